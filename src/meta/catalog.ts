import { SnapshotError, throwIfAborted } from '../errors.js'
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
import {
  createCollectionTx,
  createIndexTx,
  createPartitionTx,
  dropCollectionTx,
  dropIndexTx,
  dropPartitionTx,
  readLiveIndexes,
  type NewCollection,
} from './catalog-collections.js'
import {
  forgetDroppedBuildsTx,
  forgetDroppedCollectionTx,
  forgetIndexStep,
  listDroppedPartitions,
  forgetSegmentsTx,
  iterateAllSegments,
  listDroppedBuilds,
  listDroppedCollections,
  listDroppedIndexes,
  type DroppedIndexRecord,
  type ListDroppedIndexesOptions,
} from './catalog-gc.js'
import {
  addDeltalogsTx,
  addFieldIndexTx,
  addSegmentIndexTx,
  allocSegmentTx,
  compactTx,
  dropSegmentTx,
  flushSegmentTx,
  MAX_COMPACT_SOURCES,
  requireSegment,
} from './catalog-segments.js'
import {
  DEFAULT_PARTITION,
  expectArray,
  expectObject,
  expectOptions,
  expectString,
  invalid,
  validateBuildFiles,
  validateCount,
  validateFieldBinlogs,
  validateId,
  validateLevel,
  validateName,
  validatePartitionNames,
  validateSegmentData,
  validateSchema,
  validateShardsNum,
  validateStates,
  validateStringRecord,
} from './catalog-validate.js'
import { guardMetaStore } from './guarded-meta-store.js'
import { keys } from './keys.js'
import { prefixRange, type MetaStore } from './meta-store.js'
import { readDroppedPartitions, readSegments, requireCollection, segmentAsSeen, toIndexInfo, type DroppedBuildRecord, type DroppedCollectionRecord, type DroppedPartitionRecord } from './records.js'
import { Transactor, type MetaTxn } from './transaction.js'

/** Segment records one transaction of `forgetSegments` checks or removes (three checked reads each: 48 expectations, as GC's forget batches). */
const FORGET_CHUNK = 16

/** Options of the {@link Catalog} constructor, which the manager calls (use `manager.catalog` or {@link Catalog.over}). @internal */
export interface CatalogOptions {
  /** Runs every mutation as one atomic MetaStore batch. */
  transactor: Transactor
  /** Clock for `createdAt` and `droppedAt`, epoch milliseconds. @default Date.now */
  now?: () => number
  /** When given and false, every method rejects with `NOT_OPEN` (the manager's lifecycle). @internal */
  isOpen?: () => boolean
  /** Called with every transaction the catalog starts, so that the manager's `close()` can wait for it. @internal */
  track?: (work: Promise<unknown>) => void
}

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
  readonly #transactor: Transactor
  readonly #now: () => number
  readonly #isOpen: (() => boolean) | undefined
  readonly #track: ((work: Promise<unknown>) => void) | undefined

  /** Throws a `TypeError` on bad options. Use `manager.catalog`, or {@link Catalog.over} over a bare MetaStore. @internal */
  constructor(options: CatalogOptions) {
    expectObject(options, 'options')
    if (!(options.transactor instanceof Transactor)) throw new TypeError('Expected `transactor` to be a Transactor')
    if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError(`Expected \`now\` to be a function, got \`${typeof options.now}\``)
    if (options.isOpen !== undefined && typeof options.isOpen !== 'function') throw new TypeError(`Expected \`isOpen\` to be a function, got \`${typeof options.isOpen}\``)
    this.#transactor = options.transactor
    this.#now = options.now ?? Date.now
    this.#isOpen = options.isOpen
    this.#track = options.track
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

  /** Checks the lifecycle, the options and the signal; returns the signal. */
  #enter(options: unknown, name = 'options'): AbortSignal | undefined {
    if (this.#isOpen !== undefined && !this.#isOpen()) throw new SnapshotError('NOT_OPEN', 'the catalog is not open: open the manager first')
    expectOptions(options, name)
    const signal = options?.signal as AbortSignal | undefined
    throwIfAborted(signal)
    return signal
  }

  #run<T>(signal: AbortSignal | undefined, fn: (tx: MetaTxn) => Promise<T>): Promise<T> {
    const work = this.#transactor.run(fn, { signal })
    this.#track?.(work)
    return work
  }

  /** A read that writes nothing: it takes no lock, so it never waits behind a long write. */
  #read<T>(signal: AbortSignal | undefined, fn: (tx: MetaTxn) => Promise<T>): Promise<T> {
    const work = this.#transactor.read(fn, { signal })
    this.#track?.(work)
    return work
  }

  // ── IDs ───────────────────────────────────────────────────────────────────

  /**
   * Reserves `count` consecutive IDs from the catalog's one persistent allocator and
   * returns the first. For keys a host must write before the catalog records them (a
   * compaction result's binlogs, an index build's files): no segment, build or other
   * catalog object will ever get these IDs. `INVALID_ARGUMENT` unless 1 ≤ count ≤ 1,000,000.
   */
  async allocIds(count = 1, options: AbortOptions = {}): Promise<number> {
    const signal = this.#enter(options)
    if (typeof count !== 'number') throw new TypeError(`Expected \`count\` to be a number, got \`${typeof count}\``)
    if (!Number.isSafeInteger(count) || count < 1 || count > 1_000_000) {
      throw new SnapshotError('INVALID_ARGUMENT', `count must be an integer from 1 to 1000000, got ${count}`)
    }
    return this.#run(signal, (tx) => tx.allocIds(count))
  }

  // ── collections ───────────────────────────────────────────────────────────

  /**
   * Creates a collection. Field IDs are 100 upward in declaration order; the collection
   * and partition IDs come from the allocator. `INVALID_ARGUMENT` for a bad name, schema,
   * shard count or partition list; `ALREADY_EXISTS` when the name is taken (also by a
   * collection being restored into).
   */
  async createCollection(request: CreateCollectionRequest): Promise<CollectionInfo> {
    const signal = this.#enter(request, 'request')
    const name = validateName(request.name, 'collection')
    const spec: NewCollection = {
      name,
      schema: validateSchema(request.schema),
      shardsNum: validateShardsNum(request.shardsNum),
      partitionNames: validatePartitionNames(request.partitionNames),
      properties: validateStringRecord(request.properties, 'properties'),
      createdAt: 0,
    }
    return this.#run(signal, (tx) => createCollectionTx(tx, { ...spec, createdAt: this.#now() }))
  }

  /**
   * Creates a collection inside the caller's transaction, as is: the schema keeps its
   * field IDs and the index definitions their IDs (restore creates its target `restoring`
   * this way, together with the job record). Inputs are not validated.
   * @internal
   */
  createCollectionTx(tx: MetaTxn, spec: Omit<NewCollection, 'createdAt'> & { createdAt?: number }): Promise<CollectionInfo> {
    return createCollectionTx(tx, { ...spec, createdAt: spec.createdAt ?? this.#now() })
  }

  /** The collection named `name`, in any state (`restoring` included); `NOT_FOUND` if absent. */
  async getCollection(name: string, options: AbortOptions = {}): Promise<CollectionInfo> {
    const signal = this.#enter(options)
    validateName(name, 'collection')
    return this.#read(signal, (tx) => requireCollection(tx, name))
  }

  /** Every collection except those being restored into, by ID. */
  async listCollections(options: AbortOptions = {}): Promise<CollectionInfo[]> {
    const signal = this.#enter(options)
    return this.#read(signal, async (tx) => {
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
    const signal = this.#enter(options)
    validateName(name, 'collection')
    await this.#run(signal, (tx) => dropCollectionTx(tx, name, this.#now()))
  }

  // ── partitions ────────────────────────────────────────────────────────────

  /** Adds a partition (ID from the allocator). `ALREADY_EXISTS` when the collection has it. */
  async createPartition(collection: string, partitionName: string, options: AbortOptions = {}): Promise<PartitionInfo> {
    const signal = this.#enter(options)
    validateName(collection, 'collection', 'collection')
    validateName(partitionName, 'partition')
    return this.#run(signal, (tx) => createPartitionTx(tx, collection, partitionName))
  }

  /**
   * Drops a partition; its segments become `dropped`. `_default` cannot be dropped
   * (`INVALID_ARGUMENT`); `NOT_FOUND` for an unknown partition.
   */
  async dropPartition(collection: string, partitionName: string, options: AbortOptions = {}): Promise<void> {
    const signal = this.#enter(options)
    validateName(collection, 'collection', 'collection')
    validateName(partitionName, 'partition')
    await this.#run(signal, (tx) => dropPartitionTx(tx, collection, partitionName, this.#now()))
  }

  // ── index definitions ─────────────────────────────────────────────────────

  /**
   * Creates an index definition on a field (ID from the allocator). `INVALID_ARGUMENT` for
   * an unknown field; `ALREADY_EXISTS` for a taken index name or a field that already has
   * an index.
   */
  async createIndex(collection: string, request: CreateIndexRequest, options: AbortOptions = {}): Promise<IndexInfo> {
    const signal = this.#enter(options)
    validateName(collection, 'collection', 'collection')
    expectObject(request, 'request')
    expectString(request.fieldName, 'fieldName')
    const ix = { fieldName: request.fieldName, indexName: validateName(request.indexName, 'index'), params: validateStringRecord(request.params, 'params') }
    return this.#run(signal, (tx) => createIndexTx(tx, collection, ix, this.#now()))
  }

  /** Drops an index definition; GC collects its segments' index files later. `NOT_FOUND` if absent. */
  async dropIndex(collection: string, indexName: string, options: AbortOptions = {}): Promise<void> {
    const signal = this.#enter(options)
    validateName(collection, 'collection', 'collection')
    validateName(indexName, 'index')
    await this.#run(signal, (tx) => dropIndexTx(tx, collection, indexName, this.#now()))
  }

  /** The collection's live index definitions, by ID. */
  async listIndexes(collection: string, options: AbortOptions = {}): Promise<IndexInfo[]> {
    const signal = this.#enter(options)
    validateName(collection, 'collection', 'collection')
    return this.#read(signal, async (tx) => (await readLiveIndexes(tx, (await requireCollection(tx, collection)).id)).map(toIndexInfo))
  }

  // ── segments ──────────────────────────────────────────────────────────────

  /**
   * Allocates a `growing` segment (ID from the allocator) in a partition (default
   * `_default`) and channel (default round-robin by ID). `NOT_FOUND` for an unknown
   * partition; `INVALID_ARGUMENT` for a channel the collection does not have.
   */
  async allocSegment(request: AllocSegmentRequest): Promise<SegmentInfo> {
    const signal = this.#enter(request, 'request')
    const o = {
      collection: validateName(request.collection, 'collection', 'collection'),
      partition: request.partition === undefined ? DEFAULT_PARTITION : validateName(request.partition, 'partition', 'partition'),
      channel: request.channel,
      level: validateLevel(request.level),
    }
    if (o.channel !== undefined) expectString(o.channel, 'channel')
    return this.#run(signal, (tx) => allocSegmentTx(tx, o, this.#now()))
  }

  /**
   * Flushes a `growing` segment: records its row count and files; it becomes `flushed`.
   * Binlogs name schema fields (or the system fields 0 and 1), statslogs and bm25 logs
   * schema fields, deltalogs any field. `FAILED_PRECONDITION` unless growing.
   */
  async flushSegment(segmentId: number, request: FlushSegmentRequest, options: AbortOptions = {}): Promise<SegmentInfo> {
    const signal = this.#enter(options)
    const id = validateId(segmentId, 'segmentId')
    const data = validateSegmentData(request, 'request')
    return this.#run(signal, (tx) => flushSegmentTx(tx, id, data))
  }

  /** Appends deltalogs (deletes) to a `flushed` segment; resolves the updated segment. */
  async addDeltalogs(segmentId: number, deltalogs: FieldBinlog[], options: AbortOptions = {}): Promise<SegmentInfo> {
    const signal = this.#enter(options)
    const id = validateId(segmentId, 'segmentId')
    expectArray(deltalogs, 'deltalogs')
    const lists = validateFieldBinlogs(deltalogs, 'deltalogs')
    return this.#run(signal, (tx) => addDeltalogsTx(tx, id, lists))
  }

  /**
   * Records the files of a build of index `indexName` on a `flushed` segment, with a new
   * build ID. A previous build of that index on the segment is replaced; GC collects its
   * files. `NOT_FOUND` when the collection has no such live index.
   */
  async addSegmentIndex(segmentId: number, request: AddSegmentIndexRequest, options: AbortOptions = {}): Promise<SegmentIndexInfo> {
    const signal = this.#enter(options)
    const id = validateId(segmentId, 'segmentId')
    expectObject(request, 'request')
    const indexName = validateName(request.indexName, 'index')
    const files = validateBuildFiles(request.files, 'files')
    return this.#run(signal, (tx) => addSegmentIndexTx(tx, id, indexName, files, this.#now()))
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
    const signal = this.#enter(options)
    const id = validateId(segmentId, 'segmentId')
    expectObject(request, 'request')
    const fieldId = validateCount(request.fieldId, 'fieldId')
    const files = validateBuildFiles(request.files, 'files')
    return this.#run(signal, (tx) => addFieldIndexTx(tx, list, id, fieldId, files, this.#now()))
  }

  /**
   * Replaces `flushed` source segments of one partition by a new `flushed` segment,
   * atomically: the sources become `dropped`. The result takes the first source's
   * partition and channel and must write new files.
   */
  async compact(request: CompactRequest): Promise<SegmentInfo> {
    const signal = this.#enter(request, 'request')
    const collection = validateName(request.collection, 'collection', 'collection')
    expectArray(request.sources, 'sources')
    if (request.sources.length === 0) throw invalid('`sources` must list at least one segment')
    if (request.sources.length > MAX_COMPACT_SOURCES) {
      throw invalid(`\`sources\` lists ${request.sources.length} segments; one compaction takes at most ${MAX_COMPACT_SOURCES} (compact more in several calls)`)
    }
    const sources = request.sources.map((s, i) => validateId(s, `sources[${i}]`))
    if (new Set(sources).size !== sources.length) throw invalid('`sources` lists a segment twice')
    const result = validateSegmentData(request.result, 'result')
    const level = validateLevel(request.level)
    return this.#run(signal, (tx) => compactTx(tx, { collection, sources, result, level }, this.#now()))
  }

  /** Marks a segment `dropped` (idempotent); GC collects its files later. `NOT_FOUND` if unknown. */
  async dropSegment(segmentId: number, options: AbortOptions = {}): Promise<void> {
    const signal = this.#enter(options)
    const id = validateId(segmentId, 'segmentId')
    await this.#run(signal, (tx) => dropSegmentTx(tx, id, this.#now()))
  }

  /** One segment, in any state; `NOT_FOUND` ("segment not found") if unknown. */
  async getSegment(segmentId: number, options: AbortOptions = {}): Promise<SegmentInfo> {
    const signal = this.#enter(options)
    const id = validateId(segmentId, 'segmentId')
    return this.#read(signal, (tx) => requireSegment(tx, id))
  }

  /** The collection's segments (optionally only those in `states`), by ID. */
  async listSegments(collection: string, options: ListSegmentsOptions = {}): Promise<SegmentInfo[]> {
    const signal = this.#enter(options)
    validateName(collection, 'collection', 'collection')
    const states = validateStates(options.states)
    return this.#read(signal, async (tx) => {
      const c = await requireCollection(tx, collection)
      const droppedPartitions = await readDroppedPartitions(tx, c.id)
      const all = (await readSegments(tx, c.id)).map((s) => segmentAsSeen(s, droppedPartitions.get(s.partitionId)))
      return states === undefined ? all : all.filter((s) => states.includes(s.state))
    })
  }

  // ── GC support ────────────────────────────────────────────────────────────

  /** Every segment record in any state, of any collection (dropped ones included), by ID. @internal */
  async *listAllSegments(options: AbortOptions = {}): AsyncGenerator<SegmentInfo> {
    const signal = this.#enter(options)
    yield* iterateAllSegments(this.#transactor.store, { signal })
  }

  /**
   * Removes the records of `dropped` segments (after GC deleted their files); unknown IDs
   * are skipped. `FAILED_PRECONDITION`, removing nothing, if one is not dropped. @internal
   */
  async forgetSegments(ids: readonly number[], options: AbortOptions = {}): Promise<number> {
    const signal = this.#enter(options)
    expectArray(ids, 'ids')
    const valid = [...new Set(ids.map((id, i) => validateId(id, `ids[${i}]`)))]
    // Check every ID first (one may not be dropped: then nothing is removed), then remove in bounded batches.
    for (let i = 0; i < valid.length; i += FORGET_CHUNK) {
      const chunk = valid.slice(i, i + FORGET_CHUNK)
      await this.#read(signal, async (tx) => {
        for (const id of chunk) {
          const s = await requireSegment(tx, id).catch(() => undefined)
          if (s !== undefined && s.state !== 'dropped') throw new SnapshotError('FAILED_PRECONDITION', `cannot forget segment ${id}: it is ${s.state}, not dropped`)
        }
      })
    }
    let removed = 0
    for (let i = 0; i < valid.length; i += FORGET_CHUNK) {
      const chunk = valid.slice(i, i + FORGET_CHUNK)
      removed += await this.#run(signal, (tx) => forgetSegmentsTx(tx, chunk))
    }
    return removed
  }

  /** Dropped partitions not yet forgotten. @internal */
  async listDroppedPartitions(options: AbortOptions = {}): Promise<DroppedPartitionRecord[]> {
    return listDroppedPartitions(this.#transactor.store, { signal: this.#enter(options) })
  }

  /** Dropped collections not yet forgotten, by ID. @internal */
  async listDroppedCollections(options: AbortOptions = {}): Promise<DroppedCollectionRecord[]> {
    return listDroppedCollections(this.#transactor.store, { signal: this.#enter(options) })
  }

  /** Forgets a dropped collection and its index definitions; false if it was not recorded. @internal */
  async forgetDroppedCollection(collectionId: number, options: AbortOptions = {}): Promise<boolean> {
    const signal = this.#enter(options)
    const id = validateId(collectionId, 'collectionId')
    return this.#run(signal, (tx) => forgetDroppedCollectionTx(tx, id))
  }

  /** Dropped index definitions, of every collection or of one. @internal */
  async listDroppedIndexes(options: ListDroppedIndexesOptions = {}): Promise<DroppedIndexRecord[]> {
    const signal = this.#enter(options)
    const collectionId = options.collectionId === undefined ? undefined : validateId(options.collectionId, 'collectionId')
    return listDroppedIndexes(this.#transactor.store, { signal, collectionId })
  }

  /**
   * Forgets a dropped index definition and strips its builds from the collection's
   * segment records (after GC deleted their files), in bounded batches; false if unknown.
   * @internal
   */
  async forgetIndex(collectionId: number, indexId: number, options: AbortOptions = {}): Promise<boolean> {
    const signal = this.#enter(options)
    const c = validateId(collectionId, 'collectionId')
    const i = validateId(indexId, 'indexId')
    for (let first = true; ; first = false) {
      const step = await this.#run(signal, (tx) => forgetIndexStep(tx, c, i))
      if (step === 'unknown') return !first
      if (step === 'done') return true
    }
  }

  /** Builds replaced on their segments, not yet forgotten, by build ID. @internal */
  async listDroppedBuilds(options: AbortOptions = {}): Promise<DroppedBuildRecord[]> {
    return listDroppedBuilds(this.#transactor.store, { signal: this.#enter(options) })
  }

  /** Forgets replaced builds (after GC deleted their files). @internal */
  async forgetDroppedBuilds(buildIds: readonly number[], options: AbortOptions = {}): Promise<void> {
    const signal = this.#enter(options)
    expectArray(buildIds, 'buildIds')
    const valid = buildIds.map((id, i) => validateId(id, `buildIds[${i}]`))
    await this.#run(signal, async (tx) => forgetDroppedBuildsTx(tx, valid))
  }
}
