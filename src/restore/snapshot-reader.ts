import { SnapshotError, throwIfAborted } from '../errors.js'
import type { IndexInfo } from '../catalog-types.js'
import { keys } from '../meta/keys.js'
import type { MetaStore } from '../meta/meta-store.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { ObjectStore } from '../storage/object-store.js'
import { readListManifests } from '../snapshot/list-reader.js'
import { readMetadataVersion, type SnapshotCollectionMetadata } from '../snapshot/metadata-json.js'
import type { ListManifests } from '../snapshot/snapshot-list.js'
import { snapshotNotFound, validateSnapshotName, type SnapshotRecord } from '../snapshot/snapshot-record.js'
import type { AbortOptions } from '../types.js'

/**
 * Restore's reads of a snapshot: its small record, and its list object, of which restore
 * keeps only each segment's ID and manifest owner, in two typed arrays (see
 * `ListManifests`: nothing per segment on the V8 heap), handed out a batch at a time while
 * the job's tasks are written.
 * @internal
 */

/** Throws `FAILED_PRECONDITION` unless the snapshot is committed. */
function requireCommittedState(r: SnapshotRecord, name: string): void {
  if (r.state !== 'committed') throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${name} is ${r.state}, not committed`)
}

/**
 * The committed snapshot named `name`, read outside a transaction. `NOT_FOUND` when
 * absent, `FAILED_PRECONDITION` when pending or deleting.
 */
export async function readCommitted(meta: MetaStore, name: string, options: AbortOptions = {}): Promise<SnapshotRecord> {
  validateSnapshotName(name)
  throwIfAborted(options.signal)
  const id = await meta.get(keys.snapshotName(name), options)
  const raw = id === undefined ? undefined : await meta.get(keys.snapshot(Number(id)), options)
  if (raw === undefined) throw snapshotNotFound(name)
  const r = JSON.parse(raw) as SnapshotRecord
  requireCommittedState(r, name)
  return r
}

/**
 * The committed snapshot named `name`, read inside `tx` (so the job that pins it commits
 * only if the record is unchanged). `NOT_FOUND` / `FAILED_PRECONDITION` as above.
 */
export async function requireCommittedTx(tx: MetaTxn, name: string): Promise<SnapshotRecord> {
  validateSnapshotName(name)
  const id = await tx.get(keys.snapshotName(name))
  const r = id === undefined ? undefined : await tx.getJson<SnapshotRecord>(keys.snapshot(Number(id)))
  if (r === undefined) throw snapshotNotFound(name)
  requireCommittedState(r, name)
  return r
}

/** Source segments `[first, first + segmentIds.length)` of a snapshot, in order: their IDs and manifest owners. */
export interface SegmentBatch {
  segmentIds: number[]
  owners: number[]
}

/** A committed snapshot as restore reads it: what its list's header says, and its segments a batch at a time. */
export class SnapshotView {
  /** Object key of the list. */
  readonly key: string
  readonly snapshot: { id: number; name: string }
  readonly collection: SnapshotCollectionMetadata
  /** Index definitions (live at snapshot time), with their IDs. */
  readonly indexes: IndexInfo[]
  readonly segmentCount: number
  readonly #list: ListManifests

  constructor(list: ListManifests) {
    this.#list = list
    this.key = list.key
    this.snapshot = { id: list.header.snapshotId, name: list.header.snapshotName }
    this.collection = list.header.collection
    this.indexes = list.header.indexes
    this.segmentCount = list.count
  }

  /** Reads the segment list in order: each `next(count)` returns the next `count` segments (fewer at the end). */
  segments(): { next(count: number): SegmentBatch } {
    const list = this.#list
    let at = 0
    return {
      next(count: number): SegmentBatch {
        const end = Math.min(list.count, at + count)
        const out: SegmentBatch = { segmentIds: Array.from(list.segmentIds.subarray(at, end)), owners: Array.from(list.owners.subarray(at, end)) }
        at = end
        return out
      },
    }
  }
}

/**
 * Reads what restore needs of a committed record: its list (uncached: a restore reads it
 * once), after checking the metadata JSON's format version (`UNSUPPORTED_VERSION`).
 * `CORRUPT` when either object is missing or damaged.
 */
export async function readSnapshotView(objects: ObjectStore, r: SnapshotRecord, options: AbortOptions = {}): Promise<SnapshotView> {
  await readMetadataVersion(objects, r, options)
  if (r.list === undefined) throw new SnapshotError('CORRUPT', `snapshot ${r.name} is committed but has no segment list`)
  return new SnapshotView(await readListManifests(objects, r.list, options))
}
