import type { Index } from 'usearch'
import type { ObjectStore, SegmentFile, SegmentInfo } from '../../src/index.js'
import { loadHnsw, type HnswParams } from './hnsw.js'
import { filesOfField, getRequired, readDeltalog, readPks, readVectors } from './segment-io.js'

/**
 * Loaded segment data, cached by object key. Segment files are immutable, so an entry
 * never goes stale; a key that is no longer referenced (a compacted or dropped segment)
 * is simply not asked for again and can be released with {@link SegmentCache.retain}.
 */
export class SegmentCache {
  readonly #objects: ObjectStore
  readonly #pks = new Map<string, Promise<BigInt64Array>>()
  readonly #rowsByPk = new Map<string, Promise<Map<bigint, number>>>()
  readonly #vectors = new Map<string, Promise<Float32Array>>()
  readonly #deltas = new Map<string, Promise<BigInt64Array>>()
  readonly #indexes = new Map<string, Promise<Index>>()

  constructor(objects: ObjectStore) {
    this.#objects = objects
  }

  static #cached<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
    let p = map.get(key)
    if (p === undefined) {
      p = load()
      map.set(key, p)
      p.catch(() => map.delete(key))
    }
    return p
  }

  static #keyOf(files: readonly SegmentFile[]): string {
    return files.map((f) => f.key).join('\n')
  }

  /** The segment's primary keys (row order). */
  pks(segment: SegmentInfo, pkFieldId: number): Promise<BigInt64Array> {
    const key = SegmentCache.#keyOf(filesOfField(segment.binlogs, pkFieldId))
    return SegmentCache.#cached(this.#pks, key, () => readPks(this.#objects, segment, pkFieldId))
  }

  /** Primary key → row offset of the segment. */
  rowsByPk(segment: SegmentInfo, pkFieldId: number): Promise<Map<bigint, number>> {
    const key = SegmentCache.#keyOf(filesOfField(segment.binlogs, pkFieldId))
    return SegmentCache.#cached(this.#rowsByPk, key, async () => {
      const pks = await this.pks(segment, pkFieldId)
      const map = new Map<bigint, number>()
      for (let i = 0; i < pks.length; i++) map.set(pks[i], i)
      return map
    })
  }

  /** The segment's vectors (only cached for segments searched without an index). */
  vectors(segment: SegmentInfo, vectorFieldId: number): Promise<Float32Array> {
    const key = SegmentCache.#keyOf(filesOfField(segment.binlogs, vectorFieldId))
    return SegmentCache.#cached(this.#vectors, key, () => readVectors(this.#objects, segment, vectorFieldId))
  }

  /** Primary keys deleted from the segment by its deltalogs. */
  async deleted(segment: SegmentInfo): Promise<Set<bigint>> {
    const files = segment.deltalogs.flatMap((fb) => fb.files)
    const lists = await Promise.all(files.map((f) => SegmentCache.#cached(this.#deltas, f.key, () => readDeltalog(this.#objects, f))))
    const out = new Set<bigint>()
    for (const list of lists) for (const pk of list) out.add(pk)
    return out
  }

  /** The segment's HNSW index build, loaded from its index file. */
  hnsw(files: readonly SegmentFile[], params: HnswParams): Promise<Index> {
    if (files.length !== 1) throw new Error(`expected one HNSW index file, got ${files.length}`)
    const file = files[0]
    return SegmentCache.#cached(this.#indexes, file.key, async () => loadHnsw(await getRequired(this.#objects, file.key), params))
  }

  /** Releases every entry whose key is not among `liveKeys`. */
  retain(liveKeys: ReadonlySet<string>): void {
    for (const map of [this.#pks, this.#rowsByPk, this.#vectors, this.#deltas, this.#indexes] as Map<string, unknown>[]) {
      for (const key of map.keys()) if (!key.split('\n').every((k) => liveKeys.has(k))) map.delete(key)
    }
  }

  /** Releases everything. */
  clear(): void {
    for (const map of [this.#pks, this.#rowsByPk, this.#vectors, this.#deltas, this.#indexes] as Map<string, unknown>[]) map.clear()
  }
}
