import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { expectString } from '../meta/catalog-validate.js'
import { keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { AbortOptions } from '../types.js'
import { ListReader } from './list-reader.js'
import { ManifestReader, readMetadata, toSnapshotSegment } from './manifest-reader.js'
import type { SnapshotMetadata } from './metadata-json.js'
import { createSnapshot } from './snapshot-create.js'
import { dropSnapshot, purgeSnapshot, recoverSnapshots, type IsInUse, type RecoverSnapshotsOptions } from './snapshot-drop.js'
import type { SnapshotList } from './snapshot-list.js'
import {
  readRecordByName,
  readRecordByNameTx,
  snapshotNotFound,
  toSnapshotInfo,
  validateSnapshotName,
  type SnapshotRecord,
} from './snapshot-record.js'
import { SnapshotReferences, type SnapshotMark } from './snapshot-refs.js'
import { activeHolds, putHoldTx, readAllHolds, removeHoldTx, validateHoldTag } from './snapshot-holds.js'
import type {
  CreateSnapshotRequest,
  DescribeSnapshotOptions,
  HoldSnapshotOptions,
  ListSnapshotsOptions,
  SnapshotDescription,
  SnapshotInfo,
  SnapshotSegment,
  SpaceReport,
  SpaceReportOptions,
  VerifyReport,
} from './snapshot-types.js'
import { pruneSnapshots, type PruneSnapshotsOptions } from './snapshot-prune.js'
import type { PruneReport } from '../policy/retention.js'
import { verifySnapshot } from './snapshot-verify.js'
import { SpaceAccountant } from './space.js'

/** What the snapshot store needs from the rest of the manager. */
export interface SnapshotStoreDeps {
  /** True while an unfinished restore job reads the snapshot; checked inside the drop transaction. */
  isInUse: IsInUse
}

/** Manifests read ahead while iterating a snapshot's segments. */
const READ_AHEAD = 16

/** A committed snapshot opened for reading. */
export interface LoadedSnapshot {
  info: SnapshotInfo
  /** The decoded metadata JSON: schema with field IDs, shards, partitions, properties, index definitions. */
  metadata: SnapshotMetadata
  /** The segment list (header: the collection and index definitions as captured). */
  list: SnapshotList
  /** The captured segments, decoded from their manifests in order; `CORRUPT` when one is missing or does not decode. */
  segments(options?: AbortOptions): AsyncIterable<SnapshotSegment>
}

/**
 * Snapshot records and objects (SPEC sections 5 and 11). Records live in the MetaStore
 * under `s/` and stay small; the per-segment lists, manifests and metadata JSON live in
 * the ObjectStore under `snapshots/`.
 * @internal
 */
export class SnapshotStore {
  readonly #ctx: ManagerContext
  readonly #deps: SnapshotStoreDeps
  readonly #manifests: ManifestReader
  readonly #lists: ListReader
  readonly #references: SnapshotReferences
  readonly #space: SpaceAccountant

  constructor(ctx: ManagerContext, deps: SnapshotStoreDeps) {
    this.#ctx = ctx
    this.#deps = deps
    this.#manifests = new ManifestReader(ctx.objects)
    this.#lists = new ListReader(ctx.objects)
    this.#references = new SnapshotReferences(ctx.meta, ctx.objects)
    this.#space = new SpaceAccountant({ meta: ctx.meta, objects: ctx.objects, catalog: ctx.catalog, lists: this.#lists })
  }

  /** Space used by snapshots and collections (SPEC section 13). */
  spaceReport(options: SpaceReportOptions = {}): Promise<SpaceReport> {
    if (options.collectionName !== undefined) expectString(options.collectionName, 'collectionName')
    return this.#space.report(options)
  }

  /** Committed snapshots whose files include `key`. */
  snapshotsReferencing(key: string, options: AbortOptions = {}): Promise<{ id: number; name: string }[]> {
    return this.#space.referencing(key, options)
  }

  /** What dropping exactly the named snapshots would free. */
  reclaimableBytes(names: readonly string[], options: AbortOptions = {}): Promise<number> {
    if (!Array.isArray(names)) throw new TypeError(`Expected \`snapshotNames\` to be an array, got \`${names === null ? 'null' : typeof names}\``)
    for (const name of names) validateSnapshotName(name, 'snapshotNames[]')
    return this.#space.reclaimable(names, options)
  }

  /** Creates a snapshot of the collection's flushed segments; `schedule` marks it as that schedule's. */
  create(request: CreateSnapshotRequest, schedule?: string): Promise<SnapshotInfo> {
    const owner = this.#ctx.instanceId
    return createSnapshot(this.#ctx, this.#lists, async (id) => {
      await purgeSnapshot(this.#ctx, { lists: this.#lists }, id, { onlyPendingOf: owner ?? '' })
    }, request, schedule)
  }

  /** Applies a retention policy (see `pruneSnapshots`); `only` narrows the snapshots considered. */
  prune(options: PruneSnapshotsOptions, only?: (s: SnapshotInfo) => boolean): Promise<PruneReport> {
    return pruneSnapshots(
      {
        meta: this.#ctx.meta,
        list: (o) => this.list(o),
        dropFigures: (names, o) => this.#space.dropFigures(names, o),
        drop: (name, o) => this.#drop(name, o),
      },
      options,
      only,
    )
  }

  /** Committed snapshots (optionally of one collection, by name at snapshot time), by `createdAt` then `id`: one small record each. */
  async list(options: ListSnapshotsOptions = {}): Promise<SnapshotInfo[]> {
    const { signal, collectionName } = options
    throwIfAborted(signal)
    const out: SnapshotInfo[] = []
    const holds = await readAllHolds(this.#ctx.meta, this.#ctx.now(), { signal })
    for await (const [, value] of this.#ctx.meta.iterate(prefixRange(keys.snapshotPrefix), { signal })) {
      const r = JSON.parse(value) as SnapshotRecord
      if (r.state !== 'committed') continue
      if (collectionName !== undefined && r.collectionName !== collectionName) continue
      out.push(toSnapshotInfo(r, holds.get(r.id)))
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || a.id - b.id)
  }

  /**
   * One committed snapshot; with `includeCollectionInfo`, the collection and indexes as
   * captured. The metadata JSON's format version is checked either way (`UNSUPPORTED_VERSION`).
   */
  async describe(name: string, options: DescribeSnapshotOptions = {}): Promise<SnapshotDescription> {
    const r = await this.#committed(name, options)
    const holds = activeHolds(await this.#ctx.meta.get(keys.snapshotHolds(r.id), options), this.#ctx.now())
    const description: SnapshotDescription = toSnapshotInfo(r, holds)
    const metadata = await readMetadata(this.#ctx.objects, r, options)
    if (options.includeCollectionInfo === true) {
      const c = metadata.collection
      description.collection = { schema: c.schema, shardsNum: c.shardsNum, partitions: c.partitions, properties: c.properties }
      description.indexes = metadata.indexes
    }
    return description
  }

  /** Drops a snapshot; idempotent. */
  async drop(name: string, options: AbortOptions = {}): Promise<void> {
    await this.#drop(name, options)
  }

  /** Drops a snapshot; resolves whether this call dropped it (see `dropSnapshot`). */
  #drop(name: string, options: AbortOptions): Promise<boolean> {
    return dropSnapshot(this.#ctx, { lists: this.#lists, isInUse: this.#deps.isInUse }, name, options)
  }

  /**
   * Holds a committed snapshot under `tag` (renewing the tag if it holds already), until
   * released or `ttlMs` from now. `NOT_FOUND` when there is no committed snapshot of the name.
   */
  async hold(name: string, options: HoldSnapshotOptions): Promise<void> {
    validateSnapshotName(name)
    if (typeof options !== 'object' || options === null) throw new TypeError('Expected `options` to be an object with a `tag`')
    const { tag, ttlMs, signal } = options
    validateHoldTag(tag)
    if (ttlMs !== undefined && typeof ttlMs !== 'number') throw new TypeError(`Expected \`ttlMs\` to be a number, got \`${typeof ttlMs}\``)
    if (ttlMs !== undefined && (!Number.isSafeInteger(ttlMs) || ttlMs < 1)) throw new SnapshotError('INVALID_ARGUMENT', `\`ttlMs\` must be an integer ≥ 1, got ${ttlMs}`)
    await this.#ctx.transactor.run(async (tx) => {
      const r = await readRecordByNameTx(tx, name)
      if (r === undefined || r.state !== 'committed') throw snapshotNotFound(name)
      const now = this.#ctx.now()
      await putHoldTx(tx, r.id, tag, ttlMs === undefined ? undefined : now + ttlMs, now)
    }, { signal })
  }

  /** Releases hold `tag`; idempotent (an absent snapshot or tag resolves). */
  async release(name: string, tag: string, options: AbortOptions = {}): Promise<void> {
    validateSnapshotName(name)
    validateHoldTag(tag)
    await this.#ctx.transactor.run(async (tx) => {
      const r = await readRecordByNameTx(tx, name)
      if (r === undefined) return
      await removeHoldTx(tx, r.id, tag, this.#ctx.now())
    }, options)
  }

  /** Checks existence, size and checksum of every data and index object a committed snapshot references. */
  async verify(name: string, options: AbortOptions = {}): Promise<VerifyReport> {
    const r = await this.#committed(name, options)
    const list = await this.#requireList(r, options)
    return verifySnapshot(this.#ctx.objects, this.#manifests, r, list, options)
  }

  /**
   * Removes `pending` snapshots and finishes `deleting` ones (but those `options.keep`
   * returns true for); run by the manager that runs the loops, when it is elected.
   */
  async recover(options: RecoverSnapshotsOptions = {}): Promise<void> {
    await recoverSnapshots(this.#ctx, { lists: this.#lists }, options)
  }

  /**
   * Opens a committed snapshot for restore: its small record and its list. `NOT_FOUND`
   * when absent, `FAILED_PRECONDITION` when pending or deleting, `UNSUPPORTED_VERSION` /
   * `CORRUPT` when its metadata or list is.
   */
  async load(name: string, options: AbortOptions = {}): Promise<LoadedSnapshot> {
    validateSnapshotName(name)
    throwIfAborted(options.signal)
    const r = await readRecordByName(this.#ctx.meta, name, options)
    if (r === undefined) throw snapshotNotFound(name)
    if (r.state !== 'committed') throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${name} is ${r.state}, not committed`)
    const metadata = await readMetadata(this.#ctx.objects, r, options)
    const list = await this.#requireList(r, options)
    const manifests = this.#manifests
    const keys = Array.from({ length: list.count }, (_, i) => list.manifestKey(i))
    return {
      info: toSnapshotInfo(r),
      metadata,
      list,
      async *segments(o: AbortOptions = {}): AsyncIterable<SnapshotSegment> {
        for await (const [key, m] of manifests.readAll(keys, READ_AHEAD, o)) {
          if (m === undefined) throw new SnapshotError('CORRUPT', `snapshot ${name}: manifest ${key} is missing`, { details: { missing: [key] } })
          yield toSnapshotSegment(m)
        }
      },
    }
  }

  /** The list of a committed record; `CORRUPT` when it has none or it is missing. */
  async #requireList(r: SnapshotRecord, options: AbortOptions): Promise<SnapshotList> {
    if (r.list === undefined) throw new SnapshotError('CORRUPT', `snapshot ${r.name} is committed but has no segment list`)
    return this.#lists.read(r.list, options)
  }

  /**
   * The committed record named `name`, read inside the caller's transaction (restore pins
   * the snapshot in the same batch). `NOT_FOUND` when absent, `FAILED_PRECONDITION` when
   * pending or deleting.
   */
  async requireCommitted(tx: MetaTxn, name: string): Promise<SnapshotInfo> {
    validateSnapshotName(name)
    const r = await readRecordByNameTx(tx, name)
    if (r === undefined) throw snapshotNotFound(name)
    if (r.state !== 'committed') throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${name} is ${r.state}, not committed`)
    return toSnapshotInfo(r)
  }

  /** What every snapshot references, for GC (see `SnapshotReferences`). */
  mark(options: AbortOptions = {}): Promise<SnapshotMark> {
    return this.#references.mark(options)
  }

  /** Segment and build IDs pinned by snapshots in any state (what GC's mark reads). */
  async pinnedIds(options: AbortOptions = {}): Promise<{ segmentIds: Set<number>; buildIds: Set<number> }> {
    const { segmentIds, buildIds } = await this.mark(options)
    return { segmentIds, buildIds }
  }

  /** Lists and manifests GC's marks read from the store so far (not from their caches). */
  get markReads(): Readonly<{ lists: number; manifests: number }> {
    return this.#references.reads
  }

  async #committed(name: string, options: AbortOptions): Promise<SnapshotRecord> {
    validateSnapshotName(name)
    throwIfAborted(options.signal)
    const r = await readRecordByName(this.#ctx.meta, name, options)
    if (r === undefined || r.state !== 'committed') throw snapshotNotFound(name)
    return r
  }
}
