import { SnapshotError, throwIfAborted } from '../errors.js'
import type { AbortOptions } from '../types.js'
import type { SegmentInfo } from './catalog-types.js'
import { keys } from './keys.js'
import { prefixRange, type MetaStore } from './meta-store.js'
import {
  deleteSegmentRecord,
  listSegmentIds,
  readIndexRecords,
  readSegment,
  writeSegment,
  type DroppedBuildRecord,
  type DroppedCollectionRecord,
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

/** Every segment record, in any state, of any collection (dropped ones included), by ID. */
export async function* iterateAllSegments(meta: MetaStore, options: AbortOptions = {}): AsyncGenerator<SegmentInfo> {
  throwIfAborted(options.signal)
  for await (const [, value] of meta.iterate(prefixRange(keys.segmentPrefix), options)) yield JSON.parse(value) as SegmentInfo
}

/**
 * Removes the records of the given `dropped` segments in `tx`; unknown IDs are skipped.
 * `FAILED_PRECONDITION` (writing nothing) if one is not dropped. Resolves how many were removed.
 */
export async function forgetSegmentsTx(tx: MetaTxn, ids: readonly number[]): Promise<number> {
  let removed = 0
  for (const id of new Set(ids)) {
    const s = await readSegment(tx, id)
    if (s === undefined) continue
    if (s.state !== 'dropped') throw new SnapshotError('FAILED_PRECONDITION', `cannot forget segment ${id}: it is ${s.state}, not dropped`)
    deleteSegmentRecord(tx, s)
    removed++
  }
  return removed
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
  for (const r of await readIndexRecords(tx, id)) tx.del(keys.index(id, r.id))
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
 * Forgets a dropped index definition in `tx`: removes its builds from every segment
 * record of the collection, then the definition. Call it once GC deleted the files of
 * every build of the index (none pinned). `FAILED_PRECONDITION` if the index is live;
 * resolves false when it is unknown.
 */
export async function forgetIndexTx(tx: MetaTxn, collectionId: number, indexId: number): Promise<boolean> {
  const r = await tx.getJson<IndexRecord>(keys.index(collectionId, indexId))
  if (r === undefined) return false
  if (r.droppedAt === undefined) throw new SnapshotError('FAILED_PRECONDITION', `cannot forget index ${indexId} of collection ${collectionId}: it is not dropped`)
  for (const id of await listSegmentIds(tx, collectionId)) {
    const s = await readSegment(tx, id)
    if (s === undefined || !s.indexes.some((ix) => ix.indexId === indexId)) continue
    writeSegment(tx, { ...s, indexes: s.indexes.filter((ix) => ix.indexId !== indexId) })
  }
  tx.del(keys.index(collectionId, indexId))
  return true
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
