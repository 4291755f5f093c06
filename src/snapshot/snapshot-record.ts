import { SnapshotError } from '../errors.js'
import { expectString } from '../meta/catalog-validate.js'
import { keys } from '../meta/keys.js'
import type { MetaStore } from '../meta/meta-store.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { AbortOptions } from '../types.js'
import type { ListRef } from './snapshot-list.js'
import type { SnapshotHold, SnapshotInfo, SnapshotState } from './snapshot-types.js'

/**
 * The MetaStore record of a snapshot, `s/snap/{id}`: small at any scale (SPEC section
 * 11, ≤ 4 KiB: names are ≤ 255 characters and descriptions ≤ 1,024). What a snapshot
 * records per segment is in its list object (`list`, see `snapshot-list.ts`), written
 * before the batch that first names it and never changed afterwards.
 *
 * States: a create writes the record `pending` without a list (phase 0: the name and ID
 * are taken, the snapshot's own object keys are owned), then `pending` with its list in the
 * batch that pins the segments (phase 1), then `committed`. A drop marks it `deleting`,
 * deletes its objects, then removes it.
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
  segmentCount: number
  rowCount: number
  sizeBytes: number
  /** The metadata JSON object (Milvus-compatible layout) and its size in bytes (0 until it is written). */
  metadataKey: string
  metadataSize: number
  /** The list object; absent until the create pinned its segments (phase 1). */
  list?: ListRef
  /** When the record entered `deleting`. */
  deletingAt?: number
  /** Set once `deleting` a snapshot that never committed: its own manifest directory is deleted whole. */
  neverCommitted?: true
  /**
   * Instance ID of the manager that created the record. The loop runner's recovery
   * leaves a `pending` record alone while its owner is alive, and a failed create cleans
   * up only a record that is still its own.
   */
  owner?: string
  /** The schedule that created the snapshot (its retention prunes only its own). */
  schedule?: string
}

/** Longest snapshot description, in characters (keeps the record small). */
export const MAX_DESCRIPTION_LENGTH = 1024

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

/** The public view of a record, with its holds in force. */
export function toSnapshotInfo(r: SnapshotRecord, holds: SnapshotHold[] = []): SnapshotInfo {
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
    holds,
    ...(r.schedule === undefined ? {} : { schedule: r.schedule }),
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
