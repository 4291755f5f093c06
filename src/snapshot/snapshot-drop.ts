import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { idFromKey, keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import type { MetaTxn } from '../meta/transaction.js'
import { layout } from '../storage/layout.js'
import type { AbortOptions } from '../types.js'
import type { ListReader } from './list-reader.js'
import { readHoldsTx } from './snapshot-holds.js'
import { readRecordByNameTx, validateSnapshotName, type SnapshotRecord } from './snapshot-record.js'

/**
 * Removal of snapshots, shared by `dropSnapshot`, the cleanup of a failed create and
 * recovery. A constant number of small batches whatever the snapshot's size:
 *
 * 1. mark (one batch): the record becomes `deleting`, and the collection's snapshot-set
 *    version is read and bumped (see the reuse invariant in `snapshot-create.ts`);
 * 2. delete the objects only this snapshot needs: its metadata JSON, every manifest it lists
 *    that no other `pending` or `committed` snapshot of the collection lists, and, for a
 *    snapshot that never committed, its whole manifest directory;
 * 3. remove (one batch): the record, its name key and its collection index entry;
 * 4. delete its list object (after the record: until then, a crash is finished by
 *    recovery, which needs the list; after it, a leftover list is an object no record
 *    owns, which GC collects).
 *
 * **Manifest invariant.** A manifest is deleted only by the drop of a snapshot that lists
 * it, and only when no other snapshot that is `pending` or `committed` lists it at a time
 * after that drop's mark. Once a snapshot is marked, no create can start listing its
 * manifests (creates reuse only committed snapshots, and a create that chose it before
 * the mark fails its commit on the set version and plans again), so the set of other
 * listers only shrinks: of several snapshots sharing a manifest and dropped at once, each
 * sees the others `deleting` or gone, and whichever finishes deletes it (deletes are idempotent).
 */

/** Keys deleted per `ObjectStore.delete` call. */
const DELETE_CHUNK = 1000

/** `isInUse(tx, snapshotId)`: true while an unfinished restore job reads the snapshot. */
export type IsInUse = (tx: MetaTxn, snapshotId: number) => Promise<boolean>

/** What removal needs besides the manager context. */
export interface DropDeps {
  lists: ListReader
}

/** Step 1: marks `r` `deleting` inside `tx`. */
export async function markDeleting(tx: MetaTxn, r: SnapshotRecord, now: number): Promise<SnapshotRecord> {
  const setKey = keys.snapshotSetVersion(r.collectionId)
  tx.put(setKey, String(Number((await tx.get(setKey)) ?? '0') + 1))
  const marked: SnapshotRecord = { ...r, state: 'deleting', deletingAt: now }
  if (r.state === 'pending') marked.neverCommitted = true
  tx.putJson(keys.snapshot(r.id), marked)
  return marked
}

/** Deletes `keys`, `DELETE_CHUNK` per `ObjectStore.delete` call. */
async function deleteInChunks(ctx: ManagerContext, keys: Iterable<string> | AsyncIterable<string>, signal: AbortSignal | undefined): Promise<void> {
  let chunk: string[] = []
  for await (const key of keys) {
    chunk.push(key)
    if (chunk.length >= DELETE_CHUNK) {
      throwIfAborted(signal)
      await ctx.objects.delete(chunk, { signal })
      chunk = []
    }
  }
  if (chunk.length > 0) {
    throwIfAborted(signal)
    await ctx.objects.delete(chunk, { signal })
  }
}

/** The keys of every object under `prefix`. */
async function* keysUnder(ctx: ManagerContext, prefix: string, signal: AbortSignal | undefined): AsyncGenerator<string> {
  for await (const info of ctx.objects.list(prefix, { signal })) yield info.key
}

/**
 * The manifests `r` lists that no other `pending` or `committed` snapshot of its
 * collection lists (read after `r` was marked, see the manifest invariant).
 */
async function unsharedManifests(ctx: ManagerContext, deps: DropDeps, r: SnapshotRecord, signal: AbortSignal | undefined): Promise<string[]> {
  if (r.list === undefined) return []
  let own
  try {
    own = await deps.lists.read(r.list, { signal })
  } catch (err) {
    // Already deleted by an earlier run of step 4? Not before the record is gone; a list a
    // crash left damaged leaves its manifests to GC's sweep of unowned objects.
    if (SnapshotError.is(err, 'CORRUPT')) return []
    throw err
  }
  const mine = new Map<string, string>()
  for (let i = 0; i < own.count; i++) mine.set(`${own.owners[i]}/${own.segmentIds[i]}`, own.manifestKey(i))
  const ids: number[] = []
  for await (const [key] of ctx.meta.iterate(prefixRange(keys.collectionSnapshotPrefix(r.collectionId)), { signal })) ids.push(idFromKey(key))
  for (const id of ids) {
    if (id === r.id || mine.size === 0) continue
    const raw = await ctx.meta.get(keys.snapshot(id), { signal })
    if (raw === undefined) continue
    const other = JSON.parse(raw) as SnapshotRecord
    if (other.state === 'deleting' || other.list === undefined) continue
    const list = await deps.lists.read(other.list, { signal }).catch(async (err: unknown) => {
      // That snapshot may have been dropped since its record was read (its drop deletes the
      // list last): then it lists nothing any more. Otherwise the damage is real.
      if (!SnapshotError.is(err, 'CORRUPT')) throw err
      const again = await ctx.meta.get(keys.snapshot(id), { signal })
      if (again === undefined || (JSON.parse(again) as SnapshotRecord).state === 'deleting') return undefined
      throw err
    })
    if (list === undefined) continue
    for (let i = 0; i < list.count; i++) mine.delete(`${list.owners[i]}/${list.segmentIds[i]}`)
  }
  return [...mine.values()]
}

/**
 * Steps 2–4 for a `deleting` record. Resolves true when this call removed the record
 * (false when a concurrent call already had).
 */
export async function finishDeleting(ctx: ManagerContext, deps: DropDeps, r: SnapshotRecord, options: AbortOptions = {}): Promise<boolean> {
  const { signal } = options
  await deleteInChunks(ctx, [r.metadataKey, ...(await unsharedManifests(ctx, deps, r, signal))], signal)
  if (r.neverCommitted === true) await deleteInChunks(ctx, keysUnder(ctx, layout.snapshotManifestDir(r.collectionId, r.id), signal), signal)
  const removed = await ctx.transactor.run(async (tx) => {
    const current = await tx.getJson<SnapshotRecord>(keys.snapshot(r.id))
    if (current === undefined) return false
    tx.del(keys.snapshot(r.id))
    const nameKey = keys.snapshotName(r.name)
    if ((await tx.get(nameKey)) === String(r.id)) tx.del(nameKey)
    tx.del(keys.collectionSnapshot(current.collectionId, r.id))
    tx.del(keys.snapshotHolds(r.id))
    await forgetSetVersionIfLast(tx, current.collectionId, r.id)
    return true
  }, { signal })
  await ctx.objects.delete([layout.snapshotList(r.collectionId, r.id)], { signal })
  return removed
}

/**
 * Removes the collection's snapshot-set version with its last snapshot, once the collection
 * itself is gone: no create can pin on it any more (a create checks its collection in the
 * pin batch), and collection IDs are never reused. A live collection keeps its counter.
 */
async function forgetSetVersionIfLast(tx: MetaTxn, collectionId: number, removing: number): Promise<void> {
  if ((await tx.get(keys.collection(collectionId))) !== undefined) return
  for await (const [key] of tx.iterate({ ...prefixRange(keys.collectionSnapshotPrefix(collectionId)), limit: 2 })) {
    if (idFromKey(key) !== removing) return
  }
  tx.del(keys.snapshotSetVersion(collectionId))
}

/** Options of {@link purgeSnapshot}. */
export interface PurgeOptions extends AbortOptions {
  /**
   * Purge only a `pending` record created by this manager instance (a failed create
   * cleaning up after itself): a record that committed after all (a commit that landed but
   * reported an error) or that recovery already took over is left alone.
   */
  onlyPendingOf?: string
}

/**
 * Removes the unfinished snapshot `snapshotId`: a `pending` one (the cleanup of a failed
 * create, and recovery) or a `deleting` one (recovery). A committed snapshot is never
 * purged, only dropped (`dropSnapshot` checks `IN_USE`): a create whose commit landed but
 * reported an error leaves a committed snapshot that a restore may already read. Resolves
 * true when this call removed the record.
 */
export async function purgeSnapshot(ctx: ManagerContext, deps: DropDeps, snapshotId: number, options: PurgeOptions = {}): Promise<boolean> {
  const { onlyPendingOf } = options
  const marked = await ctx.transactor.run(async (tx) => {
    const r = await tx.getJson<SnapshotRecord>(keys.snapshot(snapshotId))
    if (r === undefined || r.state === 'committed') return undefined
    if (r.state === 'deleting') return onlyPendingOf === undefined ? r : undefined
    if (onlyPendingOf !== undefined && r.owner !== onlyPendingOf) return undefined
    return markDeleting(tx, r, ctx.now())
  }, options)
  if (marked === undefined) return false
  return finishDeleting(ctx, deps, marked, options)
}

/**
 * `dropSnapshot`: idempotent (an absent snapshot resolves), and concurrent drops of one
 * snapshot all resolve. `IN_USE` while an unfinished restore reads it or a hold is in
 * force (the error names the tags);
 * `FAILED_PRECONDITION` while it is still being created.
 *
 * Resolves `true` for the one call that took the snapshot from committed to deleting
 * (in a conditional transaction, so of concurrent drops exactly one), `false` for a
 * snapshot that was absent or already being deleted by someone else: a prune reports
 * only the drops it made.
 */
export async function dropSnapshot(ctx: ManagerContext, deps: DropDeps & { isInUse: IsInUse }, name: string, options: AbortOptions = {}): Promise<boolean> {
  validateSnapshotName(name)
  const { signal } = options
  const found = await ctx.transactor.run(async (tx) => {
    const r = await readRecordByNameTx(tx, name)
    if (r === undefined) return undefined
    if (r.state === 'deleting') return { record: r, markedHere: false }
    if (r.state === 'pending') throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${name} is still being created`)
    if (await deps.isInUse(tx, r.id)) throw new SnapshotError('IN_USE', `snapshot ${name} is used by an unfinished restore job`)
    const holds = await readHoldsTx(tx, r.id, ctx.now())
    if (holds.length > 0) {
      throw new SnapshotError('IN_USE', `snapshot ${name} is held: ${holds.map((h) => h.tag).join(', ')} (release the holds first)`, { details: { holds } })
    }
    return { record: await markDeleting(tx, r, ctx.now()), markedHere: true }
  }, { signal })
  if (found === undefined) return false
  const { record, markedHere } = found
  // A drop that finds the record deleting finishes it too (its maker may have crashed).
  if (await finishDeleting(ctx, deps, record, { signal })) {
    ctx.events.emit('snapshotDropped', { id: record.id, name: record.name, collectionId: record.collectionId })
  }
  return markedHere
}

/** Options of {@link recoverSnapshots}. */
export interface RecoverSnapshotsOptions extends AbortOptions {
  /**
   * Leaves alone the unfinished records it returns true for: the loop runner keeps the
   * `pending` records of live managers (creates in flight in another process).
   */
  keep?: (record: SnapshotRecord) => boolean
}

/**
 * Recovery on `open()`: removes every `pending` snapshot (a create that did not commit)
 * and finishes every `deleting` one, except those `keep` returns true for. Reads one small
 * record per snapshot. Resolves the number of snapshots removed.
 */
export async function recoverSnapshots(ctx: ManagerContext, deps: DropDeps, options: RecoverSnapshotsOptions = {}): Promise<number> {
  const { signal, keep } = options
  const unfinished: number[] = []
  for await (const [, value] of ctx.meta.iterate(prefixRange(keys.snapshotPrefix), { signal })) {
    const r = JSON.parse(value) as SnapshotRecord
    if (r.state !== 'committed' && keep?.(r) !== true) unfinished.push(r.id)
  }
  let removed = 0
  for (const id of unfinished) {
    throwIfAborted(signal)
    if (await purgeSnapshot(ctx, deps, id, { signal })) removed++
  }
  return removed
}
