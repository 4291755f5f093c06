import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { forgetDroppedBuildsTx, forgetDroppedCollectionTx, forgetSegmentsTx } from '../meta/catalog-gc.js'
import { keys } from '../meta/keys.js'
import { readSegment, writeSegment, type IndexRecord } from '../meta/records.js'
import { pinsAnyBuild } from '../meta/snapshot-refs.js'
import type { MetaTxn } from '../meta/transaction.js'
import { FILES_PREFIX, SNAPSHOTS_PREFIX } from '../storage/layout.js'
import type { ObjectInfo, ObjectStore } from '../storage/object-store.js'
import type { AbortOptions } from '../types.js'
import { indexRef, type CatalogMark, type ReferenceMark } from './mark.js'
import type { UnitCollection } from './plan.js'

/**
 * The sweep phase of GC: one listing of `files/`, the existence guard, the transactions
 * that re-check pins and forget the catalog records of what is collected, and the
 * batched deletes.
 * @internal
 */

/** Keys per `ObjectStore.delete` call. */
export const DELETE_BATCH = 1000

/** Most MetaStore operations (writes plus checked reads) GC puts in one transaction. */
const TXN_OPS = 1000

/** Operations one unit costs in a transaction: a checked read and up to two writes. */
const OPS_PER_UNIT = 3

/** Concurrent `head` calls for referenced objects outside `files/`. */
const HEAD_CONCURRENCY = 16

/** Lists every object under `files/` once, keyed by object key. */
export async function listFiles(objects: ObjectStore, options: AbortOptions = {}): Promise<Map<string, ObjectInfo>> {
  const out = new Map<string, ObjectInfo>()
  for await (const info of objects.list(FILES_PREFIX, options)) out.set(info.key, info)
  return out
}

/**
 * The guard: every object a committed snapshot references must exist. Keys under
 * `files/` are checked against the listing; the few others (metadata JSON, host keys
 * outside `files/`) with `head`. Resolves the missing keys, sorted.
 */
export async function findMissing(objects: ObjectStore, refs: ReferenceMark, listing: ReadonlyMap<string, ObjectInfo>, options: AbortOptions = {}): Promise<string[]> {
  const missing: string[] = []
  const outside: string[] = [...refs.committedMetadataKeys]
  for (const key of refs.committedKeys) {
    if (!key.startsWith(FILES_PREFIX)) outside.push(key)
    else if (!listing.has(key)) missing.push(key)
  }
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(HEAD_CONCURRENCY, outside.length) }, async () => {
      while (next < outside.length) {
        const key = outside[next++]
        if ((await objects.head(key, options)) === undefined) missing.push(key)
      }
    }),
  )
  return missing.sort()
}

/** The `CORRUPT` rejection of a pass that found referenced objects missing. */
export function missingError(missing: readonly string[]): SnapshotError {
  const shown = missing.slice(0, 10).join(', ')
  const more = missing.length > 10 ? ` and ${missing.length - 10} more` : ''
  return new SnapshotError('CORRUPT', `GC aborted, nothing deleted: ${missing.length} object(s) referenced by committed snapshots are missing: ${shown}${more}`, {
    details: { missing: [...missing] },
  })
}

/**
 * Inside `tx`: re-checks that nothing pins the unit and that the catalog still holds it
 * as dropped, then forgets its record (a dropped segment, a dropped index's build on its
 * segment, a replaced build). Resolves false, writing nothing, when the unit must stay.
 */
async function forgetUnit(tx: MetaTxn, c: UnitCollection): Promise<boolean> {
  const u = c.unit
  if (u.kind === 'segment' && (await tx.hasPrefix(keys.segmentRefPrefix(u.segmentId)))) return false
  if (await pinsAnyBuild(tx, u.segmentId, u.buildIds)) return false
  if (u.kind === 'segment') {
    const s = await readSegment(tx, u.segmentId)
    if (s === undefined || s.state !== 'dropped') return false
    return (await forgetSegmentsTx(tx, [u.segmentId])) === 1
  }
  if (u.kind === 'indexBuild') {
    const s = await readSegment(tx, u.segmentId)
    if (s === undefined || s.state === 'dropped' || !s.indexes.some((ix) => ix.buildId === u.buildId)) return false
    const index = await tx.getJson<IndexRecord>(keys.index(u.collectionId, u.indexId as number))
    if (index !== undefined && index.droppedAt === undefined) return false
    writeSegment(tx, { ...s, indexes: s.indexes.filter((ix) => ix.buildId !== u.buildId) })
    return true
  }
  if ((await tx.get(keys.droppedBuild(u.buildId as number))) === undefined) return false
  forgetDroppedBuildsTx(tx, [u.buildId as number])
  return true
}

/** What {@link forgetUnits} did. */
export interface ForgetResult {
  /** Units whose records are gone: their `deletes` may go now. */
  forgotten: UnitCollection[]
  /** Units a snapshot pinned (or the catalog changed) between the mark and the transaction. */
  kept: UnitCollection[]
}

/**
 * Forgets the records of the planned units in transactions of bounded size, each
 * re-checking the reference index under the transaction lock, so that no snapshot can
 * pin a unit once GC decided to collect it (snapshot creation pins only segments that
 * are flushed in the catalog, and builds of live indexes).
 */
export async function forgetUnits(ctx: ManagerContext, units: readonly UnitCollection[], options: AbortOptions = {}): Promise<ForgetResult> {
  const { signal } = options
  const perTxn = Math.max(1, Math.floor(Math.min(TXN_OPS, ctx.meta.capabilities.maxBatchOps) / OPS_PER_UNIT))
  const out: ForgetResult = { forgotten: [], kept: [] }
  for (let i = 0; i < units.length; i += perTxn) {
    throwIfAborted(signal)
    const chunk = units.slice(i, i + perTxn)
    const done = await ctx.transactor.run(async (tx) => {
      const flags: boolean[] = []
      for (const c of chunk) flags.push(await forgetUnit(tx, c))
      return flags
    }, { signal })
    chunk.forEach((c, k) => (done[k] ? out.forgotten : out.kept).push(c))
  }
  return out
}

/**
 * Forgets dropped index definitions no segment holds a build of any more, and dropped
 * collections with no segment record left (with their index definitions).
 */
export async function forgetDefinitions(ctx: ManagerContext, mark: CatalogMark, forgotten: readonly UnitCollection[], options: AbortOptions = {}): Promise<void> {
  const { signal } = options
  const released = new Map<string, Set<number>>()
  for (const { unit: u } of forgotten) {
    if (u.kind === 'replacedBuild') continue
    // A forgotten segment releases every dropped index it held; a stripped build its own.
    for (const [ref, holders] of mark.indexHolders) {
      if (!holders.has(u.segmentId)) continue
      if (u.kind === 'indexBuild' && ref !== indexRef(u.collectionId, u.indexId as number)) continue
      let set = released.get(ref)
      if (set === undefined) released.set(ref, (set = new Set()))
      set.add(u.segmentId)
    }
  }
  const indexes = mark.droppedIndexes.filter((r) => {
    const holders = mark.indexHolders.get(indexRef(r.collectionId, r.id))
    const gone = released.get(indexRef(r.collectionId, r.id))
    return holders === undefined || [...holders].every((id) => gone?.has(id))
  })
  const perTxn = Math.max(1, Math.floor(Math.min(TXN_OPS, ctx.meta.capabilities.maxBatchOps) / 2))
  for (let i = 0; i < indexes.length; i += perTxn) {
    throwIfAborted(signal)
    const chunk = indexes.slice(i, i + perTxn)
    await ctx.transactor.run(async (tx) => {
      for (const r of chunk) {
        const current = await tx.getJson<IndexRecord>(keys.index(r.collectionId, r.id))
        if (current?.droppedAt !== undefined) tx.del(keys.index(r.collectionId, r.id))
      }
    }, { signal })
  }
  for (const c of mark.droppedCollections) {
    throwIfAborted(signal)
    await ctx.transactor.run(async (tx) => {
      if (await tx.hasPrefix(keys.collectionSegmentPrefix(c.id))) return
      await forgetDroppedCollectionTx(tx, c.id)
    }, { signal })
  }
}

/** Deletes `keys` in batches of at most {@link DELETE_BATCH}; never anything under `snapshots/`. */
export async function deleteObjects(objects: ObjectStore, keyList: readonly string[], options: AbortOptions = {}): Promise<void> {
  const safe = keyList.filter((k) => !k.startsWith(SNAPSHOTS_PREFIX))
  for (let i = 0; i < safe.length; i += DELETE_BATCH) {
    throwIfAborted(options.signal)
    await objects.delete(safe.slice(i, i + DELETE_BATCH), options)
  }
}
