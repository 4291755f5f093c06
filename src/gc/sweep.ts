import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { forgetDroppedBuildsTx, forgetDroppedCollectionTx, forgetDroppedPartitionTx, forgetDropLogStep, forgetSegmentsTx } from '../meta/catalog-gc.js'
import { keys } from '../meta/keys.js'
import { readSegment, readSegmentAsSeen, writeSegment, type IndexRecord } from '../meta/records.js'
import type { MetaTxn } from '../meta/transaction.js'
import { FILES_PREFIX, SNAPSHOTS_PREFIX } from '../storage/layout.js'
import type { ObjectInfo, ObjectStore } from '../storage/object-store.js'
import type { AbortOptions } from '../types.js'
import { forEachLimit } from '../util/for-each-limit.js'
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

/**
 * Units one forget transaction handles. A unit costs at most two writes (a segment
 * record and its index entry) and three checked reads (the record, its collection and a
 * tombstone): 16 keep a batch within 32 writes and 48 expectations (SPEC section 11).
 */
const UNITS_PER_TXN = 16

/** Dropped index definitions one transaction forgets (a checked read and a delete each). */
const INDEXES_PER_TXN = 30

/** Concurrent `head` calls for referenced objects outside `files/`. */
const HEAD_CONCURRENCY = 16

/** Lists every object under `prefix` once, keyed by object key. */
export async function listFiles(objects: ObjectStore, prefix: string, options: AbortOptions = {}): Promise<Map<string, ObjectInfo>> {
  const out = new Map<string, ObjectInfo>()
  for await (const info of objects.list(prefix, options)) out.set(info.key, info)
  return out
}

/**
 * The guard: every object a committed snapshot references must exist. Keys under
 * `files/` are checked against its listing; metadata JSON and lists absent from the
 * listing of `snapshots/` (it may have run before they were written) and host keys outside
 * `files/` with `head`. Resolves the missing keys, sorted.
 */
export async function findMissing(
  objects: ObjectStore,
  refs: ReferenceMark,
  listing: ReadonlyMap<string, ObjectInfo>,
  snapshotListing: ReadonlyMap<string, ObjectInfo>,
  options: AbortOptions = {},
): Promise<string[]> {
  const missing: string[] = []
  const outside: string[] = []
  for (const key of refs.snapshots.committedObjects) if (!snapshotListing.has(key)) outside.push(key)
  for (const key of refs.snapshots.committedFiles.keys()) {
    if (!key.startsWith(FILES_PREFIX)) outside.push(key)
    else if (!listing.has(key)) missing.push(key)
  }
  await forEachLimit(outside, HEAD_CONCURRENCY, async (key) => {
    if ((await objects.head(key, options)) === undefined) missing.push(key)
  }, options.signal)
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
 * Inside `tx`: re-checks that the catalog still holds the unit as dropped, then forgets
 * its record (a dropped segment, a dropped index's build on its segment, a replaced
 * build). Resolves false, writing nothing, when the unit must stay.
 *
 * It does not re-check pins, and need not: the unit was dropped when the catalog mark
 * read it, and a snapshot can pin a segment or build only if it was not dropped when the
 * pin committed (the pin invariant in `snapshot/snapshot-create.ts`). So every snapshot
 * that pins the unit committed its pin before the mark, and the reference mark, which
 * reads the records after the catalog mark, saw it: `planPass` kept the unit.
 */
async function forgetUnit(tx: MetaTxn, c: UnitCollection): Promise<boolean> {
  const u = c.unit
  if (u.kind === 'segment') {
    const s = await readSegmentAsSeen(tx, u.segmentId)
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

/** Forgets the records of the planned units, {@link UNITS_PER_TXN} per transaction. */
export async function forgetUnits(ctx: ManagerContext, units: readonly UnitCollection[], options: AbortOptions = {}): Promise<ForgetResult> {
  const { signal } = options
  const perTxn = UNITS_PER_TXN
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
  const perTxn = INDEXES_PER_TXN
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
  const forgottenSegments = new Set(forgotten.filter((c) => c.unit.kind === 'segment').map((c) => c.unit.segmentId))
  for (const { collectionId, partitionId } of mark.droppedPartitions) {
    const holders = mark.partitionHolders.get(indexRef(collectionId, partitionId)) ?? new Set<number>()
    if (![...holders].every((id) => forgottenSegments.has(id))) continue
    throwIfAborted(signal)
    await ctx.transactor.run((tx) => forgetDroppedPartitionTx(tx, collectionId, partitionId), { signal })
  }
  for (const c of mark.droppedCollections) {
    throwIfAborted(signal)
    const empty = await ctx.transactor.run(async (tx) => !(await tx.hasPrefix(keys.collectionSegmentPrefix(c.id))), { signal })
    if (!empty) continue
    // The drop log may hold up to DROP_LOG_KEPT entries: removed in bounded steps first.
    while (await ctx.transactor.run((tx) => forgetDropLogStep(tx, c.id), { signal })) throwIfAborted(signal)
    await ctx.transactor.run(async (tx) => {
      if (await tx.hasPrefix(keys.collectionSegmentPrefix(c.id))) return
      await forgetDroppedCollectionTx(tx, c.id)
    }, { signal })
  }
}

/** Deletes objects under `snapshots/` that no snapshot record owns or lists, in batches. */
export async function deleteSnapshotObjects(objects: ObjectStore, keyList: readonly string[], options: AbortOptions = {}): Promise<void> {
  const safe = keyList.filter((k) => k.startsWith(SNAPSHOTS_PREFIX))
  for (let i = 0; i < safe.length; i += DELETE_BATCH) {
    throwIfAborted(options.signal)
    await objects.delete(safe.slice(i, i + DELETE_BATCH), options)
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
