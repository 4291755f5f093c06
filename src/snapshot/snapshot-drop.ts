import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import { REF_INDEX_FORMAT } from '../meta/snapshot-refs.js'
import type { MetaTxn } from '../meta/transaction.js'
import { layout } from '../storage/layout.js'
import type { AbortOptions } from '../types.js'
import { manifestOwner, readRecordByNameTx, validateSnapshotName, type SnapshotRecord } from './snapshot-record.js'

/**
 * Removal of snapshots, shared by `dropSnapshot`, the cleanup of a failed create and
 * recovery. Two transactions around the object deletes:
 *
 * 1. mark: the record becomes `deleting` and records `deleteKeys`, its metadata JSON plus
 *    every manifest no other live (pending or committed) snapshot lists. Creates reuse
 *    manifests only of committed snapshots, so none can start pointing at an object about
 *    to go. A snapshot that never committed also records `deletePrefix`, its own manifest
 *    directory.
 * 2. delete the objects (idempotent, so a crash here is finished on the next `open()`).
 * 3. remove: the record, its name key and every reference it held, in one batch.
 */

/** Keys deleted per `ObjectStore.delete` call. */
const DELETE_CHUNK = 1000

/** `isInUse(tx, snapshotId)`: true while an unfinished restore job reads the snapshot. */
export type IsInUse = (tx: MetaTxn, snapshotId: number) => Promise<boolean>

/**
 * Who lists the manifests of a snapshot being marked, besides the snapshot itself: the
 * snapshot that wrote a manifest (known from its key) and those that reused it (manifest
 * references). References are read with one range scan per writing snapshot (all of a
 * snapshot's manifests share a key prefix), not one per manifest.
 */
class ManifestListers {
  readonly #tx: MetaTxn
  readonly #self: number
  readonly #states = new Map<number, string | undefined>()
  /** Manifest directory (`snapshots/{c}/manifests/{id}/`) → manifest key → IDs of snapshots referencing it. */
  readonly #refs = new Map<string, Map<string, number[]>>()

  constructor(tx: MetaTxn, self: number) {
    this.#tx = tx
    this.#self = self
  }

  /**
   * True when a snapshot other than this one that is not itself being deleted lists
   * `manifestKey`. A `deleting` snapshot fixed its `deleteKeys` when it was marked, so
   * of several snapshots sharing a manifest the last one marked deletes it.
   */
  async listedByOthers(manifestKey: string): Promise<boolean> {
    const owner = manifestOwner(manifestKey)
    if (owner !== undefined && (await this.#live(owner))) return true
    for (const id of await this.#referencing(manifestKey)) if (await this.#live(id)) return true
    return false
  }

  async #live(id: number): Promise<boolean> {
    if (id === this.#self) return false
    if (!this.#states.has(id)) this.#states.set(id, (await this.#tx.getJson<SnapshotRecord>(keys.snapshot(id)))?.state)
    const state = this.#states.get(id)
    return state !== undefined && state !== 'deleting'
  }

  async #referencing(manifestKey: string): Promise<number[]> {
    const dir = manifestKey.slice(0, manifestKey.lastIndexOf('/') + 1)
    let refs = this.#refs.get(dir)
    if (refs === undefined) {
      refs = new Map()
      this.#refs.set(dir, refs)
      const all = keys.manifestRefAllPrefix
      for await (const [key] of this.#tx.iterate(prefixRange(`${all}${dir}`))) {
        const sep = key.lastIndexOf('\u0000')
        const manifest = key.slice(all.length, sep)
        let ids = refs.get(manifest)
        if (ids === undefined) refs.set(manifest, (ids = []))
        ids.push(Number(key.slice(sep + 1)))
      }
    }
    return refs.get(manifestKey) ?? []
  }
}

/** Step 1: turns `r` into a `deleting` record with its `deleteKeys`, inside `tx`. */
export async function markDeleting(tx: MetaTxn, r: SnapshotRecord, now: number): Promise<SnapshotRecord> {
  // A create reusing this snapshot's manifests bumps the counter: read it so that one
  // running concurrently in another process conflicts with this batch.
  await tx.get(keys.snapshotReuse(r.id))
  const deleteKeys = [r.metadataKey]
  const listers = new ManifestListers(tx, r.id)
  for (const key of new Set(r.manifestKeys)) {
    if (!(await listers.listedByOthers(key))) deleteKeys.push(key)
  }
  const marked: SnapshotRecord = { ...r, state: 'deleting', deleteKeys, deletingAt: now }
  if (r.state === 'pending') marked.deletePrefix = layout.snapshotManifestDir(r.collectionId, r.id)
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
 * Steps 2 and 3 for a `deleting` record. Resolves true when this call removed the record
 * (false when a concurrent call already had).
 */
export async function finishDeleting(ctx: ManagerContext, r: SnapshotRecord, options: AbortOptions = {}): Promise<boolean> {
  const { signal } = options
  await deleteInChunks(ctx, r.deleteKeys ?? [], signal)
  if (r.deletePrefix !== undefined) await deleteInChunks(ctx, keysUnder(ctx, r.deletePrefix, signal), signal)
  return ctx.transactor.run(async (tx) => {
    const current = await tx.getJson<SnapshotRecord>(keys.snapshot(r.id))
    if (current === undefined) return false
    tx.del(keys.snapshot(r.id))
    const nameKey = keys.snapshotName(r.name)
    if ((await tx.get(nameKey)) === String(r.id)) tx.del(nameKey)
    for (const segId of current.segmentIds) tx.del(keys.segmentRef(segId, r.id))
    // Records from before the builds moved into the segment references have a key per build.
    if (current.refIndex !== REF_INDEX_FORMAT) for (const buildId of current.buildIds) tx.del(keys.buildRef(buildId, r.id))
    tx.del(keys.collectionSnapshot(current.collectionId, r.id))
    tx.del(keys.snapshotReuse(r.id))
    for (const key of new Set(current.manifestKeys)) if (manifestOwner(key) !== r.id) tx.del(keys.manifestRef(key, r.id))
    return true
  }, { signal })
}

/**
 * Removes snapshot `snapshotId` in whatever state it is (the cleanup of a failed create,
 * and recovery of `pending` ones). Resolves true when this call removed the record.
 */
export async function purgeSnapshot(ctx: ManagerContext, snapshotId: number, options: AbortOptions = {}): Promise<boolean> {
  const marked = await ctx.transactor.run(async (tx) => {
    const r = await tx.getJson<SnapshotRecord>(keys.snapshot(snapshotId))
    if (r === undefined) return undefined
    if (r.state === 'deleting') return r
    return markDeleting(tx, r, ctx.now())
  }, options)
  if (marked === undefined) return false
  return finishDeleting(ctx, marked, options)
}

/**
 * `dropSnapshot`: idempotent (an absent snapshot resolves), and concurrent drops of one
 * snapshot all resolve. `IN_USE` while an unfinished restore reads it;
 * `FAILED_PRECONDITION` while it is still being created.
 */
export async function dropSnapshot(ctx: ManagerContext, isInUse: IsInUse, name: string, options: AbortOptions = {}): Promise<void> {
  validateSnapshotName(name)
  const { signal } = options
  const marked = await ctx.transactor.run(async (tx) => {
    const r = await readRecordByNameTx(tx, name)
    if (r === undefined) return undefined
    if (r.state === 'deleting') return r
    if (r.state === 'pending') throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${name} is still being created`)
    if (await isInUse(tx, r.id)) throw new SnapshotError('IN_USE', `snapshot ${name} is used by an unfinished restore job`)
    return markDeleting(tx, r, ctx.now())
  }, { signal })
  if (marked === undefined) return
  if (await finishDeleting(ctx, marked, { signal })) {
    ctx.events.emit('snapshotDropped', { id: marked.id, name: marked.name, collectionId: marked.collectionId })
  }
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
 * and finishes every `deleting` one, except those `keep` returns true for. Resolves the
 * number of snapshots removed.
 */
export async function recoverSnapshots(ctx: ManagerContext, options: RecoverSnapshotsOptions = {}): Promise<number> {
  const { signal, keep } = options
  const unfinished: { id: number; state: string }[] = []
  for await (const [, value] of ctx.meta.iterate(prefixRange(keys.snapshotPrefix), { signal })) {
    const r = JSON.parse(value) as SnapshotRecord
    if (r.state !== 'committed' && keep?.(r) !== true) unfinished.push({ id: r.id, state: r.state })
  }
  let removed = 0
  for (const { id } of unfinished) {
    throwIfAborted(signal)
    if (await purgeSnapshot(ctx, id, { signal })) removed++
  }
  return removed
}
