import { layout, type Layout } from '../storage/layout.js'
import type { AbortOptions } from '../types.js'
import type {
  AddFieldIndexRequest,
  AddSegmentIndexRequest,
  AllocSegmentRequest,
  CollectionInfo,
  CompactRequest,
  CreateCollectionRequest,
  CreateIndexRequest,
  FieldBinlog,
  FieldIndexFiles,
  FlushSegmentRequest,
  IndexInfo,
  ListSegmentsOptions,
  PartitionInfo,
  SegmentIndexInfo,
  SegmentInfo,
} from '../catalog-types.js'
import { createCollectionTx, createIndexTx, createPartitionTx, dropCollectionTx, dropIndexTx, dropPartitionTx, readLiveIndexes, type NewCollection } from './catalog-collections.js'
import {
  forgetDroppedBuildsTx,
  forgetDroppedCollectionTx,
  forgetIndex,
  forgetSegments,
  iterateAllSegments,
  listDroppedBuilds,
  listDroppedCollections,
  listDroppedIndexes,
  listDroppedPartitions,
  type DroppedIndexRecord,
  type ListDroppedIndexesOptions,
} from './catalog-gc.js'
import { CatalogGate, type CatalogOptions } from './catalog-gate.js'
import { compaction, fieldIndexBuild, idCount, idList, newCollection, newIndex, newSegment, segmentIndexBuild } from './catalog-requests.js'
import { addDeltalogsTx, addFieldIndexTx, addSegmentIndexTx, allocSegmentTx, compactTx, dropSegmentTx, flushSegmentTx, requireSegment } from './catalog-segments.js'
import { expectArray, expectObject, validateFieldBinlogs, validateId, validateName, validateSegmentData, validateStates } from './catalog-validate.js'
import { guardMetaStore } from './guarded-meta-store.js'
import { keys } from './keys.js'
import { prefixRange, type MetaStore } from './meta-store.js'
import { readDroppedPartitions, readSegments, requireCollection, segmentAsSeen, toIndexInfo, type DroppedBuildRecord, type DroppedCollectionRecord, type DroppedPartitionRecord } from './records.js'
import { Transactor, type MetaTxn } from './transaction.js'

export type { CatalogOptions } from './catalog-gate.js'

/** Options of {@link Catalog.over}. */
export interface CatalogOverOptions {
  /** @default Date.now */
  now?: () => number
}

/**
 * The host database's metadata (SPEC section 4): collections, partitions, index
 * definitions and segments with their files, and the one persistent ID allocator. Every
 * mutation is one atomic MetaStore batch, validated before anything is written, so
 * snapshot pins and catalog changes never see each other half-done.
 *
 * A manager exposes its catalog as `manager.catalog`; {@link Catalog.over} builds one
 * over a bare MetaStore (for tests, or a host that only needs the catalog).
 *
 * @example
 * const { catalog } = manager
 * await catalog.createCollection({ name: 'docs', schema: { fields: [
 *   { name: 'pk', dataType: 'Int64', isPrimaryKey: true },
 *   { name: 'vec', dataType: 'FloatVector', dim: 768 },
 * ] } })
 * const seg = await catalog.allocSegment({ collection: 'docs' })
 * await catalog.flushSegment(seg.id, { numRows: 1000, binlogs })
 */
export class Catalog {
  /** Key builders for segment files (Milvus's scheme): `insertLog`, `deltaLog`, `statsLog`, `bm25Log`, `indexFile`, `textIndex`, `jsonKeyIndex`. */
  readonly layout: Layout = layout
  readonly #gate: CatalogGate

  /** Throws a `TypeError` on bad options. Use `manager.catalog`, or {@link Catalog.over} over a bare MetaStore. @internal */
  constructor(options: CatalogOptions) {
    this.#gate = new CatalogGate(options)
  }

  /**
   * A catalog over a bare MetaStore, which the caller opens and closes. Catalogs over
   * the same store object share its transaction lock.
   */
  static over(meta: MetaStore, options: CatalogOverOptions = {}): Catalog {
    expectObject(meta, 'meta')
    expectObject(options, 'options')
    const { now } = options as CatalogOverOptions
    return new Catalog({ transactor: new Transactor(guardMetaStore(meta)), now })
  }

  // ── IDs ───────────────────────────────────────────────────────────────────

  /**
   * Reserves `count` consecutive IDs from the catalog's one persistent allocator and
   * returns the first. For keys a host must write before the catalog records them (a
   * compaction result's binlogs, an index build's files): no segment, build or other
   * catalog object will ever get these IDs. `INVALID_ARGUMENT` unless 1 ≤ count ≤ 1,000,000.
   */
  async allocIds(count = 1, options: AbortOptions = {}): Promise<number> {
    const signal = this.#gate.enter(options)
    const n = idCount(count)
    return this.#gate.run(signal, (tx) => tx.allocIds(n))
  }

  // ── collections ───────────────────────────────────────────────────────────

  /**
   * Creates a collection. Field IDs are 100 upward in declaration order; the collection
   * and partition IDs come from the allocator. `INVALID_ARGUMENT` for a bad name, schema,
   * shard count or partition list; `ALREADY_EXISTS` when the name is taken (also by a
   * collection being restored into).
   */
  async createCollection(request: CreateCollectionRequest): Promise<CollectionInfo> {
    const signal = this.#gate.enter(request, 'request')
    const spec = newCollection(request)
    return this.#gate.run(signal, (tx) => createCollectionTx(tx, { ...spec, createdAt: this.#gate.now() }))
  }

  /**
   * Creates a collection inside the caller's transaction, as is: the schema keeps its
   * field IDs and the index definitions their IDs (restore creates its target `restoring`
   * this way, together with the job record). Inputs are not validated.
   * @internal
   */
  createCollectionTx(tx: MetaTxn, spec: Omit<NewCollection, 'createdAt'> & { createdAt?: number }): Promise<CollectionInfo> {
    return createCollectionTx(tx, { ...spec, createdAt: spec.createdAt ?? this.#gate.now() })
  }

  /** The collection named `name`, in any state (`restoring` included); `NOT_FOUND` if absent. */
  async getCollection(name: string, options: AbortOptions = {}): Promise<CollectionInfo> {
    const signal = this.#gate.enter(options)
    validateName(name, 'collection')
    return this.#gate.read(signal, (tx) => requireCollection(tx, name))
  }

  /** Every collection except those being restored into, by ID. */
  async listCollections(options: AbortOptions = {}): Promise<CollectionInfo[]> {
    const signal = this.#gate.enter(options)
    return this.#gate.read(signal, async (tx) => {
      const out: CollectionInfo[] = []
      for await (const [, value] of tx.iterate(prefixRange(keys.collectionPrefix))) {
        const c = JSON.parse(value) as CollectionInfo
        if (c.state !== 'restoring') out.push(c)
      }
      return out
    })
  }

  /**
   * Drops a collection: it disappears at once, its segments become `dropped` and its
   * index definitions dropped, and GC collects their files after the grace period (unless
   * a snapshot pins them). Its snapshots stay restorable. `NOT_FOUND` if absent;
   * `FAILED_PRECONDITION` while a restore job owns it.
   */
  async dropCollection(name: string, options: AbortOptions = {}): Promise<void> {
    const signal = this.#gate.enter(options)
    validateName(name, 'collection')
    await this.#gate.run(signal, (tx) => dropCollectionTx(tx, name, this.#gate.now()))
  }

  // ── partitions ────────────────────────────────────────────────────────────

  /** Adds a partition (ID from the allocator). `ALREADY_EXISTS` when the collection has it. */
  async createPartition(collection: string, partitionName: string, options: AbortOptions = {}): Promise<PartitionInfo> {
    const signal = this.#gate.enter(options)
    validateName(collection, 'collection', 'collection')
    validateName(partitionName, 'partition')
    return this.#gate.run(signal, (tx) => createPartitionTx(tx, collection, partitionName))
  }

  /**
   * Drops a partition; its segments become `dropped`. `_default` cannot be dropped
   * (`INVALID_ARGUMENT`); `NOT_FOUND` for an unknown partition.
   */
  async dropPartition(collection: string, partitionName: string, options: AbortOptions = {}): Promise<void> {
    const signal = this.#gate.enter(options)
    validateName(collection, 'collection', 'collection')
    validateName(partitionName, 'partition')
    await this.#gate.run(signal, (tx) => dropPartitionTx(tx, collection, partitionName, this.#gate.now()))
  }

  // ── index definitions ─────────────────────────────────────────────────────

  /**
   * Creates an index definition on a field (ID from the allocator). `INVALID_ARGUMENT` for
   * an unknown field; `ALREADY_EXISTS` for a taken index name or a field that already has
   * an index.
   */
  async createIndex(collection: string, request: CreateIndexRequest, options: AbortOptions = {}): Promise<IndexInfo> {
    const signal = this.#gate.enter(options)
    validateName(collection, 'collection', 'collection')
    const ix = newIndex(request)
    return this.#gate.run(signal, (tx) => createIndexTx(tx, collection, ix, this.#gate.now()))
  }

  /** Drops an index definition; GC collects its segments' index files later. `NOT_FOUND` if absent. */
  async dropIndex(collection: string, indexName: string, options: AbortOptions = {}): Promise<void> {
    const signal = this.#gate.enter(options)
    validateName(collection, 'collection', 'collection')
    validateName(indexName, 'index')
    await this.#gate.run(signal, (tx) => dropIndexTx(tx, collection, indexName, this.#gate.now()))
  }

  /** The collection's live index definitions, by ID. */
  async listIndexes(collection: string, options: AbortOptions = {}): Promise<IndexInfo[]> {
    const signal = this.#gate.enter(options)
    validateName(collection, 'collection', 'collection')
    return this.#gate.read(signal, async (tx) => (await readLiveIndexes(tx, (await requireCollection(tx, collection)).id)).map(toIndexInfo))
  }

  // ── segments ──────────────────────────────────────────────────────────────

  /**
   * Allocates a `growing` segment (ID from the allocator) in a partition (default
   * `_default`) and channel (default round-robin by ID). `NOT_FOUND` for an unknown
   * partition; `INVALID_ARGUMENT` for a channel the collection does not have.
   */
  async allocSegment(request: AllocSegmentRequest): Promise<SegmentInfo> {
    const signal = this.#gate.enter(request, 'request')
    const o = newSegment(request)
    return this.#gate.run(signal, (tx) => allocSegmentTx(tx, o, this.#gate.now()))
  }

  /**
   * Flushes a `growing` segment: records its row count and files; it becomes `flushed`.
   * Binlogs name schema fields (or the system fields 0 and 1), statslogs and bm25 logs
   * schema fields, deltalogs any field. `FAILED_PRECONDITION` unless growing.
   */
  async flushSegment(segmentId: number, request: FlushSegmentRequest, options: AbortOptions = {}): Promise<SegmentInfo> {
    const signal = this.#gate.enter(options)
    const id = validateId(segmentId, 'segmentId')
    const data = validateSegmentData(request, 'request')
    return this.#gate.run(signal, (tx) => flushSegmentTx(tx, id, data))
  }

  /** Appends deltalogs (deletes) to a `flushed` segment; resolves the updated segment. */
  async addDeltalogs(segmentId: number, deltalogs: FieldBinlog[], options: AbortOptions = {}): Promise<SegmentInfo> {
    const signal = this.#gate.enter(options)
    const id = validateId(segmentId, 'segmentId')
    expectArray(deltalogs, 'deltalogs')
    const lists = validateFieldBinlogs(deltalogs, 'deltalogs')
    return this.#gate.run(signal, (tx) => addDeltalogsTx(tx, id, lists))
  }

  /**
   * Records the files of a build of index `indexName` on a `flushed` segment, with a new
   * build ID. A previous build of that index on the segment is replaced; GC collects its
   * files. `NOT_FOUND` when the collection has no such live index.
   */
  async addSegmentIndex(segmentId: number, request: AddSegmentIndexRequest, options: AbortOptions = {}): Promise<SegmentIndexInfo> {
    const signal = this.#gate.enter(options)
    const id = validateId(segmentId, 'segmentId')
    const { indexName, files } = segmentIndexBuild(request)
    return this.#gate.run(signal, (tx) => addSegmentIndexTx(tx, id, indexName, files, this.#gate.now()))
  }

  /** Records a text-match index build of a field on a `flushed` segment (replacing an earlier one). */
  addTextIndex(segmentId: number, request: AddFieldIndexRequest, options: AbortOptions = {}): Promise<FieldIndexFiles> {
    return this.#addFieldIndex('textIndexes', segmentId, request, options)
  }

  /** Records a JSON-key index build of a field on a `flushed` segment (replacing an earlier one). */
  addJsonKeyIndex(segmentId: number, request: AddFieldIndexRequest, options: AbortOptions = {}): Promise<FieldIndexFiles> {
    return this.#addFieldIndex('jsonKeyIndexes', segmentId, request, options)
  }

  async #addFieldIndex(list: 'textIndexes' | 'jsonKeyIndexes', segmentId: number, request: AddFieldIndexRequest, options: AbortOptions): Promise<FieldIndexFiles> {
    const signal = this.#gate.enter(options)
    const id = validateId(segmentId, 'segmentId')
    const { fieldId, files } = fieldIndexBuild(request)
    return this.#gate.run(signal, (tx) => addFieldIndexTx(tx, list, id, fieldId, files, this.#gate.now()))
  }

  /**
   * Replaces `flushed` source segments of one partition by a new `flushed` segment,
   * atomically: the sources become `dropped`. The result takes the first source's
   * partition and channel and must write new files.
   */
  async compact(request: CompactRequest): Promise<SegmentInfo> {
    const signal = this.#gate.enter(request, 'request')
    const o = compaction(request)
    return this.#gate.run(signal, (tx) => compactTx(tx, o, this.#gate.now()))
  }

  /** Marks a segment `dropped` (idempotent); GC collects its files later. `NOT_FOUND` if unknown. */
  async dropSegment(segmentId: number, options: AbortOptions = {}): Promise<void> {
    const signal = this.#gate.enter(options)
    const id = validateId(segmentId, 'segmentId')
    await this.#gate.run(signal, (tx) => dropSegmentTx(tx, id, this.#gate.now()))
  }

  /** One segment, in any state; `NOT_FOUND` ("segment not found") if unknown. */
  async getSegment(segmentId: number, options: AbortOptions = {}): Promise<SegmentInfo> {
    const signal = this.#gate.enter(options)
    const id = validateId(segmentId, 'segmentId')
    return this.#gate.read(signal, (tx) => requireSegment(tx, id))
  }

  /** The collection's segments (optionally only those in `states`), by ID. */
  async listSegments(collection: string, options: ListSegmentsOptions = {}): Promise<SegmentInfo[]> {
    const signal = this.#gate.enter(options)
    validateName(collection, 'collection', 'collection')
    const states = validateStates(options.states)
    return this.#gate.read(signal, async (tx) => {
      const c = await requireCollection(tx, collection)
      const droppedPartitions = await readDroppedPartitions(tx, c.id)
      const all = (await readSegments(tx, c.id)).map((s) => segmentAsSeen(s, droppedPartitions.get(s.partitionId)))
      return states === undefined ? all : all.filter((s) => states.includes(s.state))
    })
  }

  // ── GC support ────────────────────────────────────────────────────────────

  /** Every segment record in any state, of any collection (dropped ones included), by ID. @internal */
  async *listAllSegments(options: AbortOptions = {}): AsyncGenerator<SegmentInfo> {
    const signal = this.#gate.enter(options)
    yield* iterateAllSegments(this.#gate.store, { signal })
  }

  /**
   * Removes the records of `dropped` segments (after GC deleted their files); unknown IDs
   * are skipped. `FAILED_PRECONDITION`, removing nothing, if one is not dropped. @internal
   */
  async forgetSegments(ids: readonly number[], options: AbortOptions = {}): Promise<number> {
    const signal = this.#gate.enter(options)
    const valid = [...new Set(idList(ids, 'ids'))]
    return forgetSegments(this.#gate, valid, signal)
  }

  /** Dropped partitions not yet forgotten. @internal */
  async listDroppedPartitions(options: AbortOptions = {}): Promise<DroppedPartitionRecord[]> {
    return listDroppedPartitions(this.#gate.store, { signal: this.#gate.enter(options) })
  }

  /** Dropped collections not yet forgotten, by ID. @internal */
  async listDroppedCollections(options: AbortOptions = {}): Promise<DroppedCollectionRecord[]> {
    return listDroppedCollections(this.#gate.store, { signal: this.#gate.enter(options) })
  }

  /** Forgets a dropped collection and its index definitions; false if it was not recorded. @internal */
  async forgetDroppedCollection(collectionId: number, options: AbortOptions = {}): Promise<boolean> {
    const signal = this.#gate.enter(options)
    const id = validateId(collectionId, 'collectionId')
    return this.#gate.run(signal, (tx) => forgetDroppedCollectionTx(tx, id))
  }

  /** Dropped index definitions, of every collection or of one. @internal */
  async listDroppedIndexes(options: ListDroppedIndexesOptions = {}): Promise<DroppedIndexRecord[]> {
    const signal = this.#gate.enter(options)
    const collectionId = options.collectionId === undefined ? undefined : validateId(options.collectionId, 'collectionId')
    return listDroppedIndexes(this.#gate.store, { signal, collectionId })
  }

  /**
   * Forgets a dropped index definition and strips its builds from the collection's
   * segment records (after GC deleted their files), in bounded batches; false if unknown.
   * @internal
   */
  async forgetIndex(collectionId: number, indexId: number, options: AbortOptions = {}): Promise<boolean> {
    const signal = this.#gate.enter(options)
    const c = validateId(collectionId, 'collectionId')
    const i = validateId(indexId, 'indexId')
    return forgetIndex(this.#gate, c, i, signal)
  }

  /** Builds replaced on their segments, not yet forgotten, by build ID. @internal */
  async listDroppedBuilds(options: AbortOptions = {}): Promise<DroppedBuildRecord[]> {
    return listDroppedBuilds(this.#gate.store, { signal: this.#gate.enter(options) })
  }

  /** Forgets replaced builds (after GC deleted their files). @internal */
  async forgetDroppedBuilds(buildIds: readonly number[], options: AbortOptions = {}): Promise<void> {
    const signal = this.#gate.enter(options)
    const valid = idList(buildIds, 'buildIds')
    await this.#gate.run(signal, async (tx) => forgetDroppedBuildsTx(tx, valid))
  }
}
