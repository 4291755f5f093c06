import { SnapshotError, abortError } from '../errors.js'
import { expectString } from '../meta/catalog-validate.js'
import { keys } from '../meta/keys.js'
import type { MetaStore } from '../meta/meta-store.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { AbortOptions } from '../types.js'
import type { SnapshotInfo, SnapshotState } from './snapshot-types.js'

/**
 * The MetaStore record of a snapshot, `s/snap/{id}`. The `pending` record is written in
 * the same batch that reads the segments it captures, together with the name key and
 * the reference index, so it pins them from the first moment.
 * @internal
 */
export interface SnapshotRecord {
  id: number
  name: string
  collectionId: number
  collectionName: string
  description: string
  createdAt: number
  state: SnapshotState
  /** Captured (flushed) segments, in manifest order. */
  segmentIds: number[]
  /** Index, text-index and JSON-key-index builds the snapshot pins, ascending. */
  buildIds: number[]
  /**
   * `2` (`REF_INDEX_FORMAT`): the reference index lists the builds in the values of the
   * segment references. Absent from records written before: those have a build reference
   * key per build (see `meta/snapshot-refs.ts`).
   */
  refIndex?: 2
  segmentCount: number
  rowCount: number
  sizeBytes: number
  /** The metadata JSON object and its size in bytes. */
  metadataKey: string
  metadataSize: number
  /** The manifest of each segment (same order as `segmentIds`); may be an earlier snapshot's. */
  manifestKeys: string[]
  /**
   * Size in bytes of each manifest. A `pending` record may hold 0 for a manifest the
   * snapshot writes itself: such a manifest is encoded while the manifests are written, and
   * its size and hash are recorded at commit.
   */
  manifestSizes: number[]
  /**
   * Content hash of each manifest (see `encodeManifest`); a later snapshot reuses a manifest
   * whose hash it would write again. A `pending` record may hold '' (see `manifestSizes`).
   */
  manifestHashes: string[]
  /** Once `deleting`: the objects this snapshot removes (its metadata and the manifests no other snapshot lists). */
  deleteKeys?: string[]
  /**
   * Once `deleting` a snapshot that never committed: its own manifest directory, deleted
   * whole (a create writes manifests before its record lists them, and no other snapshot
   * reuses a manifest of an uncommitted one).
   */
  deletePrefix?: string
  /** When the record entered `deleting`. */
  deletingAt?: number
  /**
   * Instance ID of the manager that created the record (absent from managers without one).
   * The loop runner's recovery leaves a `pending` record alone while its owner is alive.
   */
  owner?: string
}

/**
 * The snapshot that wrote `manifestKey` (`snapshots/{collectionId}/manifests/{snapshotId}/{segmentId}.avro`),
 * or undefined for a key of another shape.
 */
export function manifestOwner(manifestKey: string): number | undefined {
  const parts = manifestKey.split('/')
  if (parts.length !== 5 || parts[2] !== 'manifests') return undefined
  const id = Number(parts[3])
  return Number.isSafeInteger(id) && id > 0 ? id : undefined
}

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/

/**
 * Throws unless `name` is a valid snapshot name (SPEC section 5): a `TypeError` for a
 * non-string (misuse, as in the catalog; `param` names the argument), `INVALID_ARGUMENT`
 * for a string that breaks the naming rule.
 */
export function validateSnapshotName(name: unknown, param = 'name'): asserts name is string {
  expectString(name, param)
  if (!NAME_RE.test(name) || name.includes('..')) {
    const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name)
    throw new SnapshotError(
      'INVALID_ARGUMENT',
      `invalid snapshot name ${shown}: use 1–255 characters of letters, digits, '_', '.' and '-', starting with a letter, digit or '_', without '..'`,
    )
  }
}

/** The public view of a record. */
export function toSnapshotInfo(r: SnapshotRecord): SnapshotInfo {
  return {
    id: r.id,
    name: r.name,
    collectionId: r.collectionId,
    collectionName: r.collectionName,
    description: r.description,
    createdAt: r.createdAt,
    state: r.state,
    segmentCount: r.segmentCount,
    rowCount: r.rowCount,
    sizeBytes: r.sizeBytes,
  }
}

/** The record the name points at (any state), read inside a transaction. */
export async function readRecordByNameTx(tx: MetaTxn, name: string): Promise<SnapshotRecord | undefined> {
  const raw = await tx.get(keys.snapshotName(name))
  if (raw === undefined) return undefined
  return tx.getJson<SnapshotRecord>(keys.snapshot(Number(raw)))
}

/** The record the name points at (any state), read outside a transaction. */
export async function readRecordByName(meta: MetaStore, name: string, options: AbortOptions = {}): Promise<SnapshotRecord | undefined> {
  const raw = await meta.get(keys.snapshotName(name), options)
  if (raw === undefined) return undefined
  const value = await meta.get(keys.snapshot(Number(raw)), options)
  return value === undefined ? undefined : (JSON.parse(value) as SnapshotRecord)
}

/** `NOT_FOUND` ("snapshot not found"). */
export function snapshotNotFound(name: string): SnapshotError {
  return new SnapshotError('NOT_FOUND', `snapshot not found: ${name}`)
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first
 * failure (remaining items are not started). Checks `signal` between items.
 * @internal
 */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0
  let failed = false
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      if (signal?.aborted) throw abortError(signal)
      const i = next++
      try {
        await fn(items[i], i)
      } catch (err) {
        failed = true
        throw err
      }
    }
  }
  const workers: Promise<void>[] = []
  for (let i = 0; i < Math.min(limit, items.length); i++) workers.push(worker())
  const results = await Promise.allSettled(workers)
  for (const r of results) if (r.status === 'rejected') throw r.reason
}
