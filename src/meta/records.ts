import { SnapshotError } from '../errors.js'
import type { CollectionInfo, IndexInfo, SegmentFile, SegmentInfo } from './catalog-types.js'
import { keys, idFromKey } from './keys.js'
import { prefixRange } from './meta-store.js'
import type { MetaTxn } from './transaction.js'
import { storedCapture } from '../snapshot/segment-capture.js'

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

/** Every segment of a collection (any state), read through `tx.get` so a commit validates them. */
export async function readSegments(tx: MetaTxn, collectionId: number): Promise<SegmentInfo[]> {
  const out: SegmentInfo[] = []
  for (const id of await listSegmentIds(tx, collectionId)) {
    const s = await readSegment(tx, id)
    if (s !== undefined) out.push(s)
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

// ── appended with the Catalog ─────────────────────────────────────────────────

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
