import type { Catalog, CollectionInfo, IndexInfo, ObjectStore, SegmentInfo } from '../../src/index.js'
import { compactSegments, planCompaction, type CompactionCandidate } from './compaction.js'
import { encodeInt64 } from './codec.js'
import { GrowingSegment } from './growing.js'
import { hnswParams, searchExact } from './hnsw.js'
import { buildSegmentIndex, segmentBuild } from './index-builder.js'
import { collectionFields, loadCollection } from './schema.js'
import { mergeTopK, searchSegment } from './search.js'
import { SegmentCache } from './segment-cache.js'
import { putFile, writeSegmentFiles } from './segment-io.js'
import {
  DEFAULT_INDEX_NAME,
  VECTOR_FIELD,
  type CollectionContext,
  type CompactOptions,
  type CompactionResult,
  type CreateCollectionOptions,
  type CreateIndexOptions,
  type SearchHit,
  type TinyVectorDbOptions,
} from './types.js'

/** Row counts of a collection, as {@link TinyVectorDb.stats} reports them. */
export interface CollectionStats {
  /** Flushed segments. */
  segments: number
  /** Flushed segments with an HNSW build. */
  indexedSegments: number
  /** Rows in flushed segments, deleted ones included. */
  flushedRows: number
  /** Rows of flushed segments deleted by deltalogs. */
  deletedRows: number
  /** Rows buffered in growing segments. */
  growingRows: number
  /** Rows a search can return. */
  liveRows: number
}

function toInt64(ids: BigInt64Array | readonly (bigint | number)[]): BigInt64Array {
  if (ids instanceof BigInt64Array) return ids
  return BigInt64Array.from(ids, (v) => BigInt(v))
}

/**
 * A small but real vector database on vecsnap's Catalog and an ObjectStore: an Int64
 * primary key and a FloatVector field per collection; inserts buffered in growing
 * segments; flushes that write binlogs; an HNSW index per segment (usearch); deletes as
 * deltalogs; top-k search over every segment; compaction that merges small segments and
 * purges deletes. Everything it reads comes from the catalog, so a collection restored
 * from a snapshot is searched like any other.
 *
 * Primary keys are expected to be unique; the database does not check it.
 *
 * @example
 * const db = new TinyVectorDb({ catalog: manager.catalog, objects })
 * await db.createCollection('docs', { dim: 4 })
 * await db.insert('docs', [1n, 2n], new Float32Array([0, 0, 0, 1, 1, 1, 1, 0]))
 * await db.flush('docs')
 * await db.createIndex('docs')
 * const hits = await db.search('docs', new Float32Array([0, 0, 0, 1]), 1) // [{ id: 1n, distance: 0 }]
 */
export class TinyVectorDb {
  readonly #catalog: Catalog
  readonly #objects: ObjectStore
  readonly #maxSegmentRows: number
  readonly #cache: SegmentCache
  readonly #growing = new Map<string, GrowingSegment[]>()
  readonly #locks = new Map<string, Promise<unknown>>()

  constructor(options: TinyVectorDbOptions) {
    this.#catalog = options.catalog
    this.#objects = options.objects
    this.#maxSegmentRows = options.maxSegmentRows ?? 100_000
    if (!Number.isSafeInteger(this.#maxSegmentRows) || this.#maxSegmentRows < 1) {
      throw new TypeError(`Expected \`maxSegmentRows\` to be an integer ≥ 1, got \`${options.maxSegmentRows}\``)
    }
    this.#cache = new SegmentCache(options.objects)
  }

  /** Runs mutations of one collection one at a time. */
  #locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(name) ?? Promise.resolve()
    const next = previous.then(fn, fn)
    const settled = next.catch(() => undefined)
    this.#locks.set(name, settled)
    void settled.then(() => {
      if (this.#locks.get(name) === settled) this.#locks.delete(name)
    })
    return next
  }

  /** Creates a collection `{ id: Int64 primary key (field 100), vector: FloatVector(dim) (field 101) }`. */
  async createCollection(name: string, options: CreateCollectionOptions): Promise<CollectionInfo> {
    return this.#catalog.createCollection({
      name,
      shardsNum: options.shardsNum ?? 1,
      schema: { fields: collectionFields(options.dim), description: options.description ?? '' },
    })
  }

  /** Drops the collection and forgets its unflushed rows (its files are GC's to collect). */
  async dropCollection(name: string): Promise<void> {
    await this.#locked(name, async () => {
      this.#growing.delete(name)
      await this.#catalog.dropCollection(name)
    })
  }

  /**
   * Buffers rows in the collection's growing segment (allocated on first use; a new one
   * is started every `maxSegmentRows` rows). `vectors` is row-major, `ids.length × dim`.
   * Rows become durable, snapshot-able and indexed on {@link flush}.
   */
  async insert(name: string, ids: BigInt64Array | readonly (bigint | number)[], vectors: Float32Array): Promise<void> {
    const pks = toInt64(ids)
    await this.#locked(name, async () => {
      const c = await loadCollection(this.#catalog, name)
      if (vectors.length !== pks.length * c.dim) throw new TypeError(`Expected ${pks.length} × ${c.dim} = ${pks.length * c.dim} floats, got ${vectors.length}`)
      const list = this.#growing.get(name) ?? []
      this.#growing.set(name, list)
      let offset = 0
      while (offset < pks.length) {
        let current = list.at(-1)
        if (current === undefined || current.rows >= this.#maxSegmentRows) {
          current = new GrowingSegment(await this.#catalog.allocSegment({ collection: name }), c.dim)
          list.push(current)
        }
        const take = Math.min(pks.length - offset, this.#maxSegmentRows - current.rows)
        current.append(pks.subarray(offset, offset + take), vectors.subarray(offset * c.dim, (offset + take) * c.dim))
        offset += take
      }
    })
  }

  /**
   * Writes every growing segment of the collection as binlogs (primary keys as Int64,
   * vectors as Float32, plus a primary-key statslog) and marks it `flushed`; builds its
   * HNSW index when the collection has one. Resolves the flushed segments.
   */
  async flush(name: string): Promise<SegmentInfo[]> {
    return this.#locked(name, async () => {
      const c = await loadCollection(this.#catalog, name)
      const list = this.#growing.get(name) ?? []
      const flushed: SegmentInfo[] = []
      while (list.length > 0) {
        const g = list[0]
        const rows = g.rowsData()
        if (rows.pks.length === 0) {
          await this.#catalog.dropSegment(g.segment.id)
        } else {
          const files = await writeSegmentFiles(this.#catalog, this.#objects, c, g.segment, rows)
          let segment = await this.#catalog.flushSegment(g.segment.id, { numRows: rows.pks.length, ...files })
          if (c.index !== undefined) {
            await buildSegmentIndex(this.#catalog, this.#objects, c, c.index, segment, rows.vectors)
            segment = await this.#catalog.getSegment(segment.id)
          }
          flushed.push(segment)
        }
        list.shift()
      }
      this.#growing.delete(name)
      return flushed
    })
  }

  /**
   * Defines the HNSW index on the vector field (kept in the catalog with its params) and
   * builds it for every flushed segment; later flushes and compactions build theirs.
   */
  async createIndex(name: string, options: CreateIndexOptions = {}): Promise<IndexInfo> {
    return this.#locked(name, async () => {
      const params = {
        index_type: 'HNSW',
        metric_type: 'L2',
        M: String(options.M ?? 16),
        efConstruction: String(options.efConstruction ?? 0),
        ef: String(options.ef ?? 0),
      }
      const info = await this.#catalog.createIndex(name, { fieldName: VECTOR_FIELD, indexName: options.indexName ?? DEFAULT_INDEX_NAME, params })
      await this.#buildMissing(await loadCollection(this.#catalog, name))
      return info
    })
  }

  /** Builds the HNSW index of every flushed segment that lacks one; resolves how many were built. */
  async buildIndexes(name: string): Promise<number> {
    return this.#locked(name, async () => this.#buildMissing(await loadCollection(this.#catalog, name)))
  }

  async #buildMissing(c: CollectionContext): Promise<number> {
    if (c.index === undefined) return 0
    let built = 0
    for (const segment of await this.#catalog.listSegments(c.info.name, { states: ['flushed'] })) {
      if (segmentBuild(segment, c.index) !== undefined || segment.numRows === 0) continue
      await buildSegmentIndex(this.#catalog, this.#objects, c, c.index, segment)
      built++
    }
    return built
  }

  /**
   * Deletes rows by primary key: unflushed rows are dropped from memory; for flushed
   * segments a deltalog listing the deleted keys is written and recorded with
   * `addDeltalogs`. Resolves how many rows were deleted.
   */
  async delete(name: string, ids: BigInt64Array | readonly (bigint | number)[]): Promise<number> {
    const wanted = new Set(toInt64(ids))
    return this.#locked(name, async () => {
      const c = await loadCollection(this.#catalog, name)
      let deleted = 0
      for (const g of this.#growing.get(name) ?? []) deleted += g.remove(wanted)
      for (const segment of await this.#catalog.listSegments(name, { states: ['flushed'] })) {
        const rows = await this.#cache.rowsByPk(segment, c.pkFieldId)
        const already = await this.#cache.deleted(segment)
        const hits = [...wanted].filter((pk) => rows.has(pk) && !already.has(pk))
        if (hits.length === 0) continue
        const existing = segment.deltalogs.filter((fb) => fb.fieldId === c.pkFieldId).flatMap((fb) => fb.files)
        const logId = existing.reduce((max, f) => Math.max(max, f.logId ?? 0), 0) + 1
        const key = this.#catalog.layout.deltaLog({ collectionId: c.info.id, partitionId: segment.partitionId, segmentId: segment.id, fieldId: c.pkFieldId, logId })
        const file = await putFile(this.#objects, key, encodeInt64(BigInt64Array.from(hits)), { logId, entries: hits.length })
        await this.#catalog.addDeltalogs(segment.id, [{ fieldId: c.pkFieldId, files: [file] }])
        deleted += hits.length
      }
      return deleted
    })
  }

  /**
   * The `k` rows nearest to `query` (squared L2), over every flushed segment (through
   * its HNSW index, or a scan when it has none) and the unflushed rows, without deleted
   * rows. Ties are broken by primary key.
   */
  async search(name: string, query: Float32Array, k: number): Promise<SearchHit[]> {
    if (!Number.isSafeInteger(k) || k < 1) throw new TypeError(`Expected \`k\` to be an integer ≥ 1, got \`${k}\``)
    const c = await loadCollection(this.#catalog, name)
    if (query.length !== c.dim) throw new TypeError(`Expected a query of ${c.dim} floats, got ${query.length}`)
    const segments = await this.#catalog.listSegments(name, { states: ['flushed'] })
    const params = hnswParams(c.dim, c.index?.params)
    const perSegment = await Promise.all(
      segments.map(async (segment) => {
        if (segment.numRows === 0) return []
        const [pks, deleted] = await Promise.all([this.#cache.pks(segment, c.pkFieldId), this.#cache.deleted(segment)])
        const build = segmentBuild(segment, c.index)
        if (build !== undefined) return searchSegment({ pks, deleted, index: await this.#cache.hnsw(build.files, params), dim: c.dim }, query, k)
        return searchSegment({ pks, deleted, vectors: await this.#cache.vectors(segment, c.vectorFieldId), dim: c.dim }, query, k)
      }),
    )
    for (const g of this.#growing.get(name) ?? []) {
      const rows = g.rowsData()
      perSegment.push(searchExact(rows.vectors, c.dim, query, k).map((h) => ({ id: rows.pks[h.row], distance: h.distance })))
    }
    return mergeTopK(perSegment, k)
  }

  /**
   * Merges small flushed segments and rewrites segments with many deletes, leaving the
   * deleted rows out (see `planCompaction`); each merge is one atomic `catalog.compact`,
   * followed by an HNSW build of the result. Resolves what was merged.
   */
  async compact(name: string, options: CompactOptions = {}): Promise<CompactionResult[]> {
    const maxRows = options.maxRows ?? this.#maxSegmentRows
    return this.#locked(name, async () => {
      const c = await loadCollection(this.#catalog, name)
      const candidates: CompactionCandidate[] = []
      for (const segment of await this.#catalog.listSegments(name, { states: ['flushed'] })) {
        const deleted = segment.numRows === 0 ? 0 : (await this.#cache.deleted(segment)).size
        candidates.push({ segment, live: segment.numRows - deleted, deleted })
      }
      const results: CompactionResult[] = []
      for (const group of planCompaction(candidates, maxRows)) {
        results.push(await compactSegments(this.#catalog, this.#objects, this.#cache, c, group.map((g) => g.segment)))
      }
      if (results.length > 0) await this.#releaseUnused()
      return results
    })
  }

  /** Segment and row counts of a collection. */
  async stats(name: string): Promise<CollectionStats> {
    const c = await loadCollection(this.#catalog, name)
    const segments = await this.#catalog.listSegments(name, { states: ['flushed'] })
    let flushedRows = 0
    let deletedRows = 0
    let indexedSegments = 0
    for (const s of segments) {
      flushedRows += s.numRows
      deletedRows += (await this.#cache.deleted(s)).size
      if (segmentBuild(s, c.index) !== undefined) indexedSegments++
    }
    const growingRows = (this.#growing.get(name) ?? []).reduce((n, g) => n + g.rows, 0)
    return { segments: segments.length, indexedSegments, flushedRows, deletedRows, growingRows, liveRows: flushedRows - deletedRows + growingRows }
  }

  /** Drops cached data of files no flushed segment of any collection references any more. */
  async #releaseUnused(): Promise<void> {
    const live = new Set<string>()
    for (const c of await this.#catalog.listCollections()) {
      for (const s of await this.#catalog.listSegments(c.name, { states: ['flushed'] })) {
        for (const list of [s.binlogs, s.deltalogs]) for (const fb of list) for (const f of fb.files) live.add(f.key)
        for (const b of s.indexes) for (const f of b.files) live.add(f.key)
      }
    }
    this.#cache.retain(live)
  }

  /** Forgets cached segment data and unflushed rows. The catalog and objects are the caller's to close. */
  close(): void {
    this.#cache.clear()
    this.#growing.clear()
  }
}
