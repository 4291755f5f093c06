import { SnapshotError } from '../errors.js'
import type { CollectionInfo, IndexInfo, SegmentFile, SegmentInfo } from '../catalog-types.js'
import { keys, idFromKey } from './keys.js'
import { prefixRange } from './meta-store.js'
import type { MetaTxn } from './transaction.js'
import { storedCapture } from '../format/segment-capture.js'

/**
 * Record-level reads and writes of the catalog inside a {@link MetaTxn}. The Catalog's
 * public methods, the snapshot store, restore and GC all go through these, so there is
 * one place that knows how a record is stored.
 */

/** A stored index definition; `droppedAt` is set once dropped (kept until GC collects its files). */
export interface IndexRecord extends IndexInfo {
  createdAt: number
  droppedAt?: number
}

/** A dropped collection kept for GC. */
export interface DroppedCollectionRecord {
  id: number
  name: string
  droppedAt: number
}

/** A dropped partition kept for GC (its segments count as dropped at `droppedAt`). */
export interface DroppedPartitionRecord {
  collectionId: number
  partitionId: number
  name: string
  droppedAt: number
}

export async function readCollectionById(tx: MetaTxn, id: number): Promise<CollectionInfo | undefined> {
  return tx.getJson<CollectionInfo>(keys.collection(id))
}

/** The collection named `name` (any state), or undefined. */
export async function readCollectionByName(tx: MetaTxn, name: string): Promise<CollectionInfo | undefined> {
  const raw = await tx.get(keys.collectionName(name))
  if (raw === undefined) return undefined
  return readCollectionById(tx, Number(raw))
}

/** The collection named `name`, or `NOT_FOUND` ("collection not found"). */
export async function requireCollection(tx: MetaTxn, name: string): Promise<CollectionInfo> {
  const c = await readCollectionByName(tx, name)
  if (c === undefined) throw new SnapshotError('NOT_FOUND', `collection not found: ${name}`)
  return c
}

export function writeCollection(tx: MetaTxn, c: CollectionInfo): void {
  tx.putJson(keys.collection(c.id), c)
  tx.put(keys.collectionName(c.name), String(c.id))
}

export async function readSegment(tx: MetaTxn, id: number): Promise<SegmentInfo | undefined> {
  return tx.getJson<SegmentInfo>(keys.segment(id))
}

/** Writes a segment record, and its collection index entry with what a snapshot captures of it (see `storedCapture`). */
export function writeSegment(tx: MetaTxn, s: SegmentInfo): void {
  tx.putJson(keys.segment(s.id), s)
  tx.put(keys.collectionSegment(s.collectionId, s.id), storedCapture(s))
}

/** Removes a segment record entirely (GC, after its files are gone). */
export function deleteSegmentRecord(tx: MetaTxn, s: Pick<SegmentInfo, 'id' | 'collectionId'>): void {
  tx.del(keys.segment(s.id))
  tx.del(keys.collectionSegment(s.collectionId, s.id))
}

/** IDs of every segment of a collection (any state), ascending. */
export async function listSegmentIds(tx: MetaTxn, collectionId: number): Promise<number[]> {
  const ids: number[] = []
  for await (const [key] of tx.iterate(prefixRange(keys.collectionSegmentPrefix(collectionId)))) ids.push(idFromKey(key))
  return ids
}

/** Every segment record of a collection (any state, as stored), by ID; the records are read concurrently. */
export async function readSegments(tx: MetaTxn, collectionId: number): Promise<SegmentInfo[]> {
  const ids = await listSegmentIds(tx, collectionId)
  const values = await tx.getMany(ids.map((id) => keys.segment(id)))
  const out: SegmentInfo[] = []
  for (const v of values) if (v !== undefined) out.push(JSON.parse(v) as SegmentInfo)
  return out
}

/**
 * Dropping a collection or a partition writes one tombstone instead of rewriting every
 * segment record (a batch per segment would not fit a transaction at scale). A segment
 * whose collection or partition is dropped is `dropped` as the host and GC see it, at the
 * tombstone's time; {@link segmentAsSeen} applies that, and every read the host or GC
 * makes goes through it.
 */
export function segmentAsSeen(s: SegmentInfo, droppedAt: number | undefined): SegmentInfo {
  if (s.state === 'dropped' || droppedAt === undefined) return s
  return { ...s, state: 'dropped', droppedAt }
}

/** When the segment's collection or partition was dropped (undefined while both are live), read in `tx`. */
export async function tombstoneTime(tx: MetaTxn, s: Pick<SegmentInfo, 'collectionId' | 'partitionId' | 'createdAt'>): Promise<number | undefined> {
  const c = await readCollectionById(tx, s.collectionId)
  if (c === undefined) {
    const dropped = await tx.getJson<DroppedCollectionRecord>(keys.droppedCollection(s.collectionId))
    return dropped?.droppedAt ?? s.createdAt
  }
  if (c.partitions.some((p) => p.id === s.partitionId)) return undefined
  const dropped = await tx.getJson<DroppedPartitionRecord>(keys.droppedPartition(s.collectionId, s.partitionId))
  return dropped?.droppedAt ?? s.createdAt
}

/** The segment as the host sees it (see {@link segmentAsSeen}), read in `tx`; undefined when unknown. */
export async function readSegmentAsSeen(tx: MetaTxn, id: number): Promise<SegmentInfo | undefined> {
  const s = await readSegment(tx, id)
  if (s === undefined || s.state === 'dropped') return s
  return segmentAsSeen(s, await tombstoneTime(tx, s))
}

/** Drop times of the dropped partitions of a collection, by partition ID. */
export async function readDroppedPartitions(tx: MetaTxn, collectionId: number): Promise<Map<number, number>> {
  const out = new Map<number, number>()
  for await (const [, value] of tx.iterate(prefixRange(keys.droppedPartitionPrefix(collectionId)))) {
    const r = JSON.parse(value) as DroppedPartitionRecord
    out.set(r.partitionId, r.droppedAt)
  }
  return out
}

/** Index definitions of a collection, dropped ones included. */
export async function readIndexRecords(tx: MetaTxn, collectionId: number): Promise<IndexRecord[]> {
  const out: IndexRecord[] = []
  for await (const [, value] of tx.iterate(prefixRange(keys.indexPrefix(collectionId)))) out.push(JSON.parse(value) as IndexRecord)
  return out
}

export function writeIndexRecord(tx: MetaTxn, collectionId: number, r: IndexRecord): void {
  tx.putJson(keys.index(collectionId, r.id), r)
}

/** The public view of an index record. */
export function toIndexInfo(r: IndexRecord): IndexInfo {
  return { id: r.id, fieldId: r.fieldId, name: r.name, params: { ...r.params } }
}

/** Which list of a segment an index build belongs to. */
export type BuildKind = 'index' | 'textIndex' | 'jsonKeyIndex'

/**
 * An index build that a newer build of the same index (or, for text and JSON-key
 * indexes, of the same field) replaced on its segment. Its files are garbage once
 * `droppedAt` is older than the grace period, unless a snapshot pins `buildId`.
 */
export interface DroppedBuildRecord {
  buildId: number
  kind: BuildKind
  collectionId: number
  partitionId: number
  segmentId: number
  /** Index ID, for `kind: 'index'`. */
  indexId?: number
  /** Field ID, for `kind: 'textIndex' | 'jsonKeyIndex'`. */
  fieldId?: number
  files: SegmentFile[]
  droppedAt: number
}

/** Writes the record of a replaced build. */
export function writeDroppedBuild(tx: MetaTxn, r: DroppedBuildRecord): void {
  tx.putJson(keys.droppedBuild(r.buildId), r)
}

/** Writes the record that keeps a dropped partition known to GC. */
export function writeDroppedPartition(tx: MetaTxn, r: DroppedPartitionRecord): void {
  tx.putJson(keys.droppedPartition(r.collectionId, r.partitionId), r)
}

/** Writes the record that keeps a dropped collection known to GC. */
export function writeDroppedCollection(tx: MetaTxn, r: DroppedCollectionRecord): void {
  tx.putJson(keys.droppedCollection(r.id), r)
}

/**
 * Reads a collection's change counter (see `keys.collectionVersion`), so that the
 * transaction conflicts with any concurrent change of its segment set or indexes.
 */
export async function readCollectionVersion(tx: MetaTxn, collectionId: number): Promise<number> {
  const raw = await tx.get(keys.collectionVersion(collectionId))
  return raw === undefined ? 0 : Number(raw)
}

/** Bumps a collection's change counter: call it whenever a segment is added or an index created or dropped. */
export async function bumpCollectionVersion(tx: MetaTxn, collectionId: number): Promise<void> {
  tx.put(keys.collectionVersion(collectionId), String((await readCollectionVersion(tx, collectionId)) + 1))
}

/** Reads a collection's drop epoch (see `keys.dropEpoch`); 0 when never bumped. */
export async function readDropEpoch(tx: MetaTxn, collectionId: number): Promise<number> {
  const raw = await tx.get(keys.dropEpoch(collectionId))
  return raw === undefined ? 0 : Number(raw)
}

/** Drop-log entries kept per collection (see `keys.dropLog`). */
export const DROP_LOG_KEPT = 1000

/** A drop-log entry. */
export type DropLogEntry = { segments: number[]; all?: undefined } | { all: true; segments?: undefined }

/**
 * Bumps a collection's drop epoch and logs what the change dropped (`'all'` when it may
 * concern any segment: a dropped index, partition or collection). Every change that drops
 * a segment, a partition, the collection or an index build, or replaces a build, calls it
 * in the same batch, so a snapshot create that read the epoch before its scan can tell
 * whether a segment it captured was dropped since (see `snapshot/snapshot-create.ts`).
 */
export async function bumpDropEpoch(tx: MetaTxn, collectionId: number, dropped: readonly number[] | 'all'): Promise<void> {
  const epoch = (await readDropEpoch(tx, collectionId)) + 1
  tx.put(keys.dropEpoch(collectionId), String(epoch))
  const entry: DropLogEntry = dropped === 'all' ? { all: true } : { segments: [...dropped] }
  tx.putJson(keys.dropLog(collectionId, epoch), entry)
  if (epoch > DROP_LOG_KEPT) tx.del(keys.dropLog(collectionId, epoch - DROP_LOG_KEPT))
}

/**
 * What the drops after epoch `since`, up to and including `until`, dropped: the segment
 * IDs, or `'all'` when one may concern any segment or the log no longer reaches back to
 * `since`. A range read: the caller's transaction must also check the epoch itself.
 */
export async function dropsBetween(tx: MetaTxn, collectionId: number, since: number, until: number): Promise<Set<number> | 'all'> {
  if (until <= since) return new Set()
  if (until - since >= DROP_LOG_KEPT) return 'all'
  const out = new Set<number>()
  let seen = 0
  for await (const [, value] of tx.iterate({ gt: keys.dropLog(collectionId, since), lte: keys.dropLog(collectionId, until) })) {
    const entry = JSON.parse(value) as DropLogEntry
    if (entry.all === true) return 'all'
    for (const id of entry.segments) out.add(id)
    seen++
  }
  return seen === until - since ? out : 'all'
}
