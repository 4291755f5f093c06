import { SnapshotError, throwIfAborted } from '../errors.js'
import type { AbortOptions } from '../types.js'
import type { SegmentInfo } from '../catalog-types.js'
import type { CatalogGate } from './catalog-gate.js'
import { requireSegment } from './catalog-segments.js'
import { idFromKey, keys } from './keys.js'
import { prefixRange, type MetaStore } from './meta-store.js'
import {
  deleteSegmentRecord,
  readIndexRecords,
  readSegmentAsSeen,
  segmentAsSeen,
  writeSegment,
  type DroppedBuildRecord,
  type DroppedCollectionRecord,
  type DroppedPartitionRecord,
  type IndexRecord,
} from './records.js'
import type { MetaTxn } from './transaction.js'

/**
 * What GC needs from the catalog: listings of everything that may hold garbage (dropped
 * segments, dropped collections, dropped index definitions, replaced builds) and the
 * removal of their records once GC deleted their files. Listings stream from the store
 * without holding the transaction lock; removals are steps inside a caller's
 * {@link MetaTxn}, so GC can check pins in the same transaction.
 * @internal
 */

/** A dropped index definition with its collection. */
export interface DroppedIndexRecord extends IndexRecord {
  collectionId: number
  droppedAt: number
}

/** Options of {@link listDroppedIndexes}. */
export interface ListDroppedIndexesOptions extends AbortOptions {
  /** Only this collection's (live or dropped collection). Default: every collection. */
  collectionId?: number
}

/**
 * Every segment record, in any state, of any collection (dropped ones included), by ID,
 * as the host sees it: a segment of a dropped collection or partition is `dropped` at
 * the tombstone's time (see `segmentAsSeen`). The tombstones are read first, so a
 * segment dropped with its collection during the iteration may still show its own state;
 * GC reads again before it forgets anything.
 */
export async function* iterateAllSegments(meta: MetaStore, options: AbortOptions = {}): AsyncGenerator<SegmentInfo> {
  throwIfAborted(options.signal)
  const collections = new Map<number, number>()
  for (const r of await listDroppedCollections(meta, options)) collections.set(r.id, r.droppedAt)
  const partitions = new Map<string, number>()
  for (const r of await listDroppedPartitions(meta, options)) partitions.set(`${r.collectionId}/${r.partitionId}`, r.droppedAt)
  for await (const [, value] of meta.iterate(prefixRange(keys.segmentPrefix), options)) {
    const s = JSON.parse(value) as SegmentInfo
    yield segmentAsSeen(s, collections.get(s.collectionId) ?? partitions.get(`${s.collectionId}/${s.partitionId}`))
  }
}

/**
 * Removes the records of the given `dropped` segments in `tx`; unknown IDs are skipped.
 * `FAILED_PRECONDITION` (writing nothing) if one is not dropped. Resolves how many were removed.
 */
export async function forgetSegmentsTx(tx: MetaTxn, ids: readonly number[]): Promise<number> {
  let removed = 0
  for (const id of new Set(ids)) {
    const s = await readSegmentAsSeen(tx, id)
    if (s === undefined) continue
    if (s.state !== 'dropped') throw new SnapshotError('FAILED_PRECONDITION', `cannot forget segment ${id}: it is ${s.state}, not dropped`)
    deleteSegmentRecord(tx, s)
    removed++
  }
  return removed
}

/** Segment records one transaction of `forgetSegments` checks or removes (three checked reads each: 48 expectations, as GC's forget batches). */
const FORGET_CHUNK = 16

/**
 * Removes the records of `dropped` segments through the catalog's gate, in bounded
 * batches; unknown IDs are skipped. `FAILED_PRECONDITION`, removing nothing, if one is
 * not dropped. Resolves how many were removed.
 */
export async function forgetSegments(gate: CatalogGate, ids: readonly number[], signal: AbortSignal | undefined): Promise<number> {
  // Check every ID first (one may not be dropped: then nothing is removed), then remove in bounded batches.
  for (let i = 0; i < ids.length; i += FORGET_CHUNK) {
    const chunk = ids.slice(i, i + FORGET_CHUNK)
    await gate.read(signal, async (tx) => {
      for (const id of chunk) {
        const s = await requireSegment(tx, id).catch(() => undefined)
        if (s !== undefined && s.state !== 'dropped') throw new SnapshotError('FAILED_PRECONDITION', `cannot forget segment ${id}: it is ${s.state}, not dropped`)
      }
    })
  }
  let removed = 0
  for (let i = 0; i < ids.length; i += FORGET_CHUNK) {
    const chunk = ids.slice(i, i + FORGET_CHUNK)
    removed += await gate.run(signal, (tx) => forgetSegmentsTx(tx, chunk))
  }
  return removed
}

/** Every dropped partition GC has not forgotten yet, by collection then partition ID. */
export async function listDroppedPartitions(meta: MetaStore, options: AbortOptions = {}): Promise<DroppedPartitionRecord[]> {
  throwIfAborted(options.signal)
  const out: DroppedPartitionRecord[] = []
  for await (const [, value] of meta.iterate(prefixRange(keys.droppedPartitionAllPrefix), options)) out.push(JSON.parse(value) as DroppedPartitionRecord)
  return out
}

/** Every dropped collection GC has not forgotten yet, by ID. */
export async function listDroppedCollections(meta: MetaStore, options: AbortOptions = {}): Promise<DroppedCollectionRecord[]> {
  throwIfAborted(options.signal)
  const out: DroppedCollectionRecord[] = []
  for await (const [, value] of meta.iterate(prefixRange(keys.droppedCollectionPrefix), options)) out.push(JSON.parse(value) as DroppedCollectionRecord)
  return out
}

/**
 * Forgets a dropped collection in `tx`: its dropped-collection record and its index
 * definitions. Its segment records are forgotten separately ({@link forgetSegmentsTx}).
 * Resolves false when the collection was not recorded as dropped (nothing is written).
 */
export async function forgetDroppedCollectionTx(tx: MetaTxn, id: number): Promise<boolean> {
  if ((await tx.get(keys.droppedCollection(id))) === undefined) return false
  if ((await tx.get(keys.collection(id))) !== undefined) {
    throw new SnapshotError('FAILED_PRECONDITION', `collection ${id} is recorded as dropped but still exists`)
  }
  tx.del(keys.droppedCollection(id))
  tx.del(keys.dropEpoch(id))
  // The snapshot-set version goes with the last of the collection's snapshots (or here, if it has none).
  if (!(await tx.hasPrefix(keys.collectionSnapshotPrefix(id)))) tx.del(keys.snapshotSetVersion(id))
  for (const r of await readIndexRecords(tx, id)) tx.del(keys.index(id, r.id))
  for await (const [key] of tx.iterate(prefixRange(keys.droppedPartitionPrefix(id)))) tx.del(key)
  return true
}

/**
 * Forgets the dropped partition `partitionId` of collection `collectionId` in `tx`. Call it
 * once every segment record of the partition is forgotten (GC: every holder its mark saw,
 * forgotten by this pass's committed transactions). The holders are not read again here: a
 * forgotten record never comes back and no segment is allocated in a dropped partition, and
 * reading them would make the transaction's expectations grow with the partition (over
 * etcd's 128 operations past ~128 segments). Resolves false when the record is gone already.
 */
export async function forgetDroppedPartitionTx(tx: MetaTxn, collectionId: number, partitionId: number): Promise<boolean> {
  if ((await tx.get(keys.droppedPartition(collectionId, partitionId))) === undefined) return false
  tx.del(keys.droppedPartition(collectionId, partitionId))
  return true
}

/** Dropped index definitions (of live and of dropped collections), by collection then index ID. */
export async function listDroppedIndexes(meta: MetaStore, options: ListDroppedIndexesOptions = {}): Promise<DroppedIndexRecord[]> {
  throwIfAborted(options.signal)
  const prefix = options.collectionId === undefined ? keys.indexAllPrefix : keys.indexPrefix(options.collectionId)
  const out: DroppedIndexRecord[] = []
  for await (const [key, value] of meta.iterate(prefixRange(prefix), { signal: options.signal })) {
    const r = JSON.parse(value) as IndexRecord
    if (r.droppedAt === undefined) continue
    const collectionId = Number(key.slice(keys.indexAllPrefix.length, key.indexOf('/', keys.indexAllPrefix.length)))
    out.push({ ...r, collectionId, droppedAt: r.droppedAt })
  }
  return out
}

/**
 * Segment records one step of {@link forgetIndexStep} reads (one checked read each) and
 * strips when they hold a build of the index (two writes each): with the definition's own
 * read and delete, within 64 operations and expectations.
 */
export const FORGET_INDEX_CHUNK = 25

/** Where {@link forgetIndexStep} got to: more segments after `after` to look at, done, or no such definition. */
export type ForgetIndexProgress = { state: 'more'; after: number } | { state: 'done' } | { state: 'unknown' }

/**
 * One bounded step of forgetting a dropped index definition, in `tx`: reads the next
 * {@link FORGET_INDEX_CHUNK} segment records of the collection after segment `after` (by
 * ID; from the first without it), strips the index's builds from those that hold one and,
 * once it has looked at the last segment, removes the definition. Call it with the `after`
 * it returns until it resolves `'done'` (or `'unknown'`), once GC deleted the files of every
 * build of the index (none pinned). `FAILED_PRECONDITION` if the index is live.
 *
 * Invariant: a segment an earlier step looked at does not gain a build of the index later:
 * `addSegmentIndexTx` adds builds of live index definitions only, new segments (compaction
 * targets included) start with none, a restore writes builds of its target collection's
 * own definitions, and a dropped definition is never live again. So the definition can go
 * once every segment was looked at once, and the whole forget reads each record once, in
 * steps that stay within the batch limits whatever the collection's size.
 */
export async function forgetIndexStep(tx: MetaTxn, collectionId: number, indexId: number, after?: number): Promise<ForgetIndexProgress> {
  const r = await tx.getJson<IndexRecord>(keys.index(collectionId, indexId))
  if (r === undefined) return { state: 'unknown' }
  if (r.droppedAt === undefined) throw new SnapshotError('FAILED_PRECONDITION', `cannot forget index ${indexId} of collection ${collectionId}: it is not dropped`)
  const all = prefixRange(keys.collectionSegmentPrefix(collectionId))
  const range = after === undefined ? all : { gt: keys.collectionSegment(collectionId, after), lt: all.lt }
  const ids: number[] = []
  for await (const [key] of tx.iterate({ ...range, limit: FORGET_INDEX_CHUNK + 1 })) ids.push(idFromKey(key))
  const chunk = ids.slice(0, FORGET_INDEX_CHUNK)
  for (const value of await tx.getMany(chunk.map((id) => keys.segment(id)))) {
    if (value === undefined) continue
    const s = JSON.parse(value) as SegmentInfo
    if (s.indexes.some((ix) => ix.indexId === indexId)) writeSegment(tx, { ...s, indexes: s.indexes.filter((ix) => ix.indexId !== indexId) })
  }
  if (ids.length > FORGET_INDEX_CHUNK) return { state: 'more', after: chunk[chunk.length - 1] }
  tx.del(keys.index(collectionId, indexId))
  return { state: 'done' }
}

/**
 * Forgets a dropped index definition through the catalog's gate, one {@link forgetIndexStep}
 * per transaction until it is done; false if the definition was not recorded.
 */
export async function forgetIndex(gate: CatalogGate, collectionId: number, indexId: number, signal: AbortSignal | undefined): Promise<boolean> {
  let after: number | undefined
  for (let first = true; ; first = false) {
    const step = await gate.run(signal, (tx) => forgetIndexStep(tx, collectionId, indexId, after))
    if (step.state === 'unknown') return !first
    if (step.state === 'done') return true
    after = step.after
  }
}

/** Every replaced build GC has not forgotten yet, by build ID. */
export async function listDroppedBuilds(meta: MetaStore, options: AbortOptions = {}): Promise<DroppedBuildRecord[]> {
  throwIfAborted(options.signal)
  const out: DroppedBuildRecord[] = []
  for await (const [, value] of meta.iterate(prefixRange(keys.droppedBuildPrefix), options)) out.push(JSON.parse(value) as DroppedBuildRecord)
  return out
}

/** Removes the records of replaced builds in `tx` (after GC deleted their files). */
export function forgetDroppedBuildsTx(tx: MetaTxn, buildIds: readonly number[]): void {
  for (const id of buildIds) tx.del(keys.droppedBuild(id))
}

/** Drop-log entries one step of {@link forgetDropLogStep} removes. */
const DROP_LOG_CHUNK = 60

/**
 * Removes up to {@link DROP_LOG_CHUNK} drop-log entries of a dropped collection in `tx`
 * (before `forgetDroppedCollectionTx`); resolves true while more remain.
 */
export async function forgetDropLogStep(tx: MetaTxn, collectionId: number): Promise<boolean> {
  let n = 0
  for await (const [key] of tx.iterate({ ...prefixRange(keys.dropLogPrefix(collectionId)), limit: DROP_LOG_CHUNK + 1 })) {
    if (n === DROP_LOG_CHUNK) return true
    tx.del(key)
    n++
  }
  return false
}
