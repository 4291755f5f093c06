import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import type { SegmentInfo } from '../meta/catalog-types.js'
import { keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import { segmentFiles } from '../meta/segment-files.js'
import { readPins, type PinnedIds } from '../meta/snapshot-refs.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { AbortOptions } from '../types.js'
import { toSnapshotSegment } from './manifest-codec.js'
import { ManifestReader, readMetadata } from './manifest-reader.js'
import type { SnapshotMetadata } from './metadata-json.js'
import { createSnapshot } from './snapshot-create.js'
import { dropSnapshot, purgeSnapshot, recoverSnapshots, type IsInUse, type RecoverSnapshotsOptions } from './snapshot-drop.js'
import {
  readRecordByName,
  readRecordByNameTx,
  snapshotNotFound,
  toSnapshotInfo,
  validateSnapshotName,
  type SnapshotRecord,
} from './snapshot-record.js'
import type {
  CreateSnapshotRequest,
  DescribeSnapshotOptions,
  ListSnapshotsOptions,
  SnapshotDescription,
  SnapshotInfo,
  SnapshotSegment,
  SnapshotState,
  VerifyReport,
} from './snapshot-types.js'
import { verifySnapshot } from './snapshot-verify.js'

/** Manifests read ahead while iterating a snapshot's segments. */
const READ_AHEAD = 16

/** What the snapshot store needs from the rest of the manager. */
export interface SnapshotStoreDeps {
  /** True while an unfinished restore job reads the snapshot; checked inside the drop transaction. */
  isInUse: IsInUse
}

/** An object a snapshot references, as GC sees it. */
export interface SnapshotFileRef {
  key: string
  /** Size in bytes as the snapshot recorded it. */
  size: number
  snapshotId: number
  state: SnapshotState
  /** `data`: a segment or index file (under `files/` for catalog-built keys); `snapshot`: its metadata JSON or a manifest. */
  kind: 'data' | 'snapshot'
}

/** A committed snapshot opened for reading (restore). */
export interface LoadedSnapshot {
  info: SnapshotInfo
  /** The decoded metadata JSON: schema with field IDs, shards, partitions, properties, index definitions. */
  metadata: SnapshotMetadata
  /** The captured segments, decoded from their manifests in order; `CORRUPT` when one is missing or does not decode. */
  segments(options?: AbortOptions): AsyncIterable<SnapshotSegment>
}

/**
 * Snapshot records, the reference index and the snapshot objects (SPEC section 5).
 * Records live in the MetaStore under `s/`; metadata JSON and Avro manifests in the
 * ObjectStore under `snapshots/`.
 * @internal
 */
export class SnapshotStore {
  readonly #ctx: ManagerContext
  readonly #deps: SnapshotStoreDeps
  readonly #manifests: ManifestReader

  constructor(ctx: ManagerContext, deps: SnapshotStoreDeps) {
    this.#ctx = ctx
    this.#deps = deps
    this.#manifests = new ManifestReader(ctx.objects)
  }

  /** Creates a snapshot of the collection's flushed segments. */
  create(request: CreateSnapshotRequest): Promise<SnapshotInfo> {
    return createSnapshot(this.#ctx, (id) => this.#purge(id), request)
  }

  /** Committed snapshots (optionally of one collection, by name at snapshot time), by `createdAt` then `id`. */
  async list(options: ListSnapshotsOptions = {}): Promise<SnapshotInfo[]> {
    const { signal, collectionName } = options
    throwIfAborted(signal)
    const out: SnapshotInfo[] = []
    for await (const [, value] of this.#ctx.meta.iterate(prefixRange(keys.snapshotPrefix), { signal })) {
      const r = JSON.parse(value) as SnapshotRecord
      if (r.state !== 'committed') continue
      if (collectionName !== undefined && r.collectionName !== collectionName) continue
      out.push(toSnapshotInfo(r))
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || a.id - b.id)
  }

  /** One committed snapshot; with `includeCollectionInfo`, the collection and indexes as captured. */
  async describe(name: string, options: DescribeSnapshotOptions = {}): Promise<SnapshotDescription> {
    const r = await this.#committed(name, options)
    const description: SnapshotDescription = toSnapshotInfo(r)
    if (options.includeCollectionInfo === true) {
      const metadata = await readMetadata(this.#ctx.objects, r, options)
      const c = metadata.collection
      description.collection = { schema: c.schema, shardsNum: c.shardsNum, partitions: c.partitions, properties: c.properties }
      description.indexes = metadata.indexes
    }
    return description
  }

  /** Drops a snapshot; idempotent. */
  async drop(name: string, options: AbortOptions = {}): Promise<void> {
    await dropSnapshot(this.#ctx, this.#deps.isInUse, name, options)
  }

  /** Checks existence, size and checksum of every data and index object a committed snapshot references. */
  async verify(name: string, options: AbortOptions = {}): Promise<VerifyReport> {
    const r = await this.#committed(name, options)
    return verifySnapshot(this.#ctx.objects, this.#manifests, r, options)
  }

  /**
   * Removes `pending` snapshots and finishes `deleting` ones (but those `options.keep`
   * returns true for); run by the manager that runs the loops, when it is elected.
   */
  async recover(options: RecoverSnapshotsOptions = {}): Promise<void> {
    await recoverSnapshots(this.#ctx, options)
  }

  /**
   * Opens a committed snapshot for restore. `NOT_FOUND` when absent, `FAILED_PRECONDITION`
   * when pending or deleting, `UNSUPPORTED_VERSION` / `CORRUPT` when its metadata is.
   */
  async load(name: string, options: AbortOptions = {}): Promise<LoadedSnapshot> {
    validateSnapshotName(name)
    throwIfAborted(options.signal)
    const r = await readRecordByName(this.#ctx.meta, name, options)
    if (r === undefined) throw snapshotNotFound(name)
    if (r.state !== 'committed') throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${name} is ${r.state}, not committed`)
    const metadata = await readMetadata(this.#ctx.objects, r, options)
    const manifests = this.#manifests
    return {
      info: toSnapshotInfo(r),
      metadata,
      async *segments(o: AbortOptions = {}): AsyncIterable<SnapshotSegment> {
        for await (const [key, m] of manifests.readAll(metadata.manifests, READ_AHEAD, o)) {
          if (m === undefined) throw new SnapshotError('CORRUPT', `snapshot ${name}: manifest ${key} is missing`, { details: { missing: [key] } })
          yield toSnapshotSegment(m)
        }
      },
    }
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

  /**
   * Every object referenced by a snapshot in any state: data and index files, manifests
   * and metadata JSON. GC treats the data keys as live and checks that the objects of
   * committed snapshots exist. Committed snapshots are read from their manifests (a
   * missing manifest is `CORRUPT`); pending and deleting ones, whose manifests may not all
   * exist, from the catalog segments they pin, falling back to the manifest.
   */
  async *referencedFiles(options: AbortOptions = {}): AsyncIterable<SnapshotFileRef> {
    const { signal } = options
    throwIfAborted(signal)
    const ids: number[] = []
    for await (const [key] of this.#ctx.meta.iterate(prefixRange(keys.snapshotPrefix), { signal })) ids.push(Number(key.slice(keys.snapshotPrefix.length)))
    for (const id of ids) {
      const raw = await this.#ctx.meta.get(keys.snapshot(id), { signal })
      if (raw === undefined) continue
      const r = JSON.parse(raw) as SnapshotRecord
      const ref = { snapshotId: r.id, state: r.state }
      yield { key: r.metadataKey, size: r.metadataSize, kind: 'snapshot', ...ref }
      const seen = new Set<string>()
      for (let i = 0; i < r.manifestKeys.length; i++) {
        if (seen.has(r.manifestKeys[i])) continue
        seen.add(r.manifestKeys[i])
        yield { key: r.manifestKeys[i], size: r.manifestSizes[i], kind: 'snapshot', ...ref }
      }
      if (r.state === 'committed') {
        for await (const [key, m] of this.#manifests.readAll([...seen], READ_AHEAD, options)) {
          if (m === undefined) throw new SnapshotError('CORRUPT', `snapshot ${r.name}: manifest ${key} is missing`, { details: { missing: [key] } })
          for (const { file } of segmentFiles(m)) yield { key: file.key, size: file.size, kind: 'data', ...ref }
        }
      } else {
        for (let i = 0; i < r.segmentIds.length; i++) {
          const seg = await this.#pinnedSegment(r.segmentIds[i], r.manifestKeys[i], options)
          if (seg !== undefined) for (const { file } of segmentFiles(seg)) yield { key: file.key, size: file.size, kind: 'data', ...ref }
        }
      }
    }
  }

  /** The catalog's record of a pinned segment, else its manifest if it exists. */
  async #pinnedSegment(segmentId: number, manifestKey: string | undefined, options: AbortOptions): Promise<SegmentInfo | SnapshotSegment | undefined> {
    const raw = await this.#ctx.meta.get(keys.segment(segmentId), options)
    if (raw !== undefined) return JSON.parse(raw) as SegmentInfo
    if (manifestKey === undefined) return undefined
    try {
      return await this.#manifests.read(manifestKey, options)
    } catch (err) {
      if (SnapshotError.is(err, 'CORRUPT')) return undefined
      throw err
    }
  }

  /** Segment and build IDs pinned by snapshots in any state, from the reference index. */
  pinnedIds(options: AbortOptions = {}): Promise<PinnedIds> {
    return readPins(this.#ctx.meta, options)
  }

  async #committed(name: string, options: AbortOptions): Promise<SnapshotRecord> {
    validateSnapshotName(name)
    throwIfAborted(options.signal)
    const r = await readRecordByName(this.#ctx.meta, name, options)
    if (r === undefined || r.state !== 'committed') throw snapshotNotFound(name)
    return r
  }

  async #purge(id: number): Promise<void> {
    await purgeSnapshot(this.#ctx, id)
  }
}
