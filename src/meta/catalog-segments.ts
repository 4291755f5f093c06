import { SnapshotError } from '../errors.js'
import type {
  CollectionInfo,
  FieldBinlog,
  FieldIndexFiles,
  SegmentFile,
  SegmentIndexInfo,
  SegmentInfo,
  SegmentLevel,
  SegmentState,
} from '../catalog-types.js'
import { partitionNotFound, readLiveIndexes, requireWritableCollection } from './catalog-collections.js'
import { SYSTEM_FIELD_IDS, checkDistinctKeys, checkFieldIds, filesOf, invalid, type SegmentData } from './catalog-validate.js'
import { segmentFiles } from './segment-files.js'
import {
  bumpCollectionVersion,
  bumpDropEpoch,
  readCollectionById,
  readSegmentAsSeen,
  writeDroppedBuild,
  writeSegment,
} from './records.js'
import type { MetaTxn } from './transaction.js'

/**
 * Segment mutations of the Catalog, each a step inside a caller's {@link MetaTxn}.
 * Inputs are already validated for shape; these check them against the stored state
 * (schema field IDs, segment states) before writing anything.
 * @internal
 */

/** The file lists of a flush or of a compaction result, validated for shape. */
export type { SegmentData } from './catalog-validate.js'

/** What `allocSegmentTx` needs. */
export interface NewSegment {
  collection: string
  partition: string
  channel?: string
  level: SegmentLevel
}

/** `NOT_FOUND` ("segment not found"). */
export function segmentNotFound(id: number): SnapshotError {
  return new SnapshotError('NOT_FOUND', `segment not found: ${id}`)
}

/** The segment `id` as the host sees it (dropped with its collection or partition), or `NOT_FOUND`. */
export async function requireSegment(tx: MetaTxn, id: number): Promise<SegmentInfo> {
  const s = await readSegmentAsSeen(tx, id)
  if (s === undefined) throw segmentNotFound(id)
  return s
}

/**
 * The segment `id` in state `state` with its collection, for a mutation. `NOT_FOUND` when
 * unknown; `FAILED_PRECONDITION` in another state or while a restore owns the collection.
 */
async function requireMutable(tx: MetaTxn, id: number, state: SegmentState, action: string): Promise<{ seg: SegmentInfo; collection: CollectionInfo }> {
  const seg = await requireSegment(tx, id)
  if (seg.state !== state) throw new SnapshotError('FAILED_PRECONDITION', `cannot ${action} segment ${id}: it is ${seg.state}, not ${state}`)
  const collection = await readCollectionById(tx, seg.collectionId)
  if (collection === undefined) throw new SnapshotError('FAILED_PRECONDITION', `cannot ${action} segment ${id}: its collection ${seg.collectionId} was dropped`)
  if (collection.state === 'restoring') {
    throw new SnapshotError('FAILED_PRECONDITION', `cannot ${action} segment ${id}: collection ${collection.name} is being restored into`)
  }
  return { seg, collection }
}

function fieldIds(c: CollectionInfo, withSystem: boolean): Set<number> {
  const ids = new Set(c.schema.fields.map((f) => f.fieldId))
  if (withSystem) for (const id of SYSTEM_FIELD_IDS) ids.add(id)
  return ids
}

/** Checks the field IDs of flushed or compacted data against the schema (deltalogs may name any field). */
function checkData(c: CollectionInfo, d: SegmentData, name: '' | 'result.'): void {
  checkFieldIds(d.binlogs, `${name}binlogs`, fieldIds(c, true))
  checkFieldIds(d.statslogs, `${name}statslogs`, fieldIds(c, false))
  checkFieldIds(d.bm25logs, `${name}bm25logs`, fieldIds(c, false))
  checkDistinctKeys(filesOf([d.binlogs, d.statslogs, d.deltalogs, d.bm25logs]), [], name === '' ? 'the flush' : 'the compaction result')
}

/** A new, empty segment record (no rows, no files). @internal */
export function emptySegment(o: Pick<SegmentInfo, 'id' | 'collectionId' | 'partitionId' | 'channel' | 'state' | 'level' | 'createdAt'>): SegmentInfo {
  return {
    id: o.id,
    collectionId: o.collectionId,
    partitionId: o.partitionId,
    channel: o.channel,
    state: o.state,
    level: o.level,
    numRows: 0,
    binlogs: [],
    statslogs: [],
    deltalogs: [],
    bm25logs: [],
    indexes: [],
    textIndexes: [],
    jsonKeyIndexes: [],
    createdAt: o.createdAt,
  }
}

/**
 * Allocates a `growing` segment in `tx`. `NOT_FOUND` for an unknown partition,
 * `INVALID_ARGUMENT` for a channel the collection does not have; by default channels are
 * assigned round-robin by segment ID.
 */
export async function allocSegmentTx(tx: MetaTxn, o: NewSegment, now: number): Promise<SegmentInfo> {
  const c = await requireWritableCollection(tx, o.collection, 'allocate a segment')
  const partition = c.partitions.find((p) => p.name === o.partition)
  if (partition === undefined) throw partitionNotFound(o.collection, o.partition)
  if (o.channel !== undefined && !c.channels.includes(o.channel)) {
    throw invalid(`collection ${c.name} has no channel ${JSON.stringify(o.channel)}; its channels are ${c.channels.join(', ')}`)
  }
  const id = await tx.allocIds(1)
  const channel = o.channel ?? c.channels[id % c.channels.length]
  const seg = emptySegment({ id, collectionId: c.id, partitionId: partition.id, channel, state: 'growing', level: o.level, createdAt: now })
  writeSegment(tx, seg)
  await bumpCollectionVersion(tx, c.id)
  return seg
}

/** Flushes a `growing` segment in `tx`: records its row count and files, state `flushed`. */
export async function flushSegmentTx(tx: MetaTxn, id: number, d: SegmentData): Promise<SegmentInfo> {
  const { seg, collection } = await requireMutable(tx, id, 'growing', 'flush')
  checkData(collection, d, '')
  const out: SegmentInfo = { ...seg, state: 'flushed', numRows: d.numRows, binlogs: d.binlogs, statslogs: d.statslogs, deltalogs: d.deltalogs, bm25logs: d.bm25logs }
  writeSegment(tx, out)
  return out
}

/** Appends deltalogs to a `flushed` segment in `tx`, merging files of a field already listed. */
export async function addDeltalogsTx(tx: MetaTxn, id: number, deltalogs: FieldBinlog[]): Promise<SegmentInfo> {
  const { seg } = await requireMutable(tx, id, 'flushed', 'add deltalogs to')
  checkDistinctKeys(filesOf([deltalogs]), [...segmentFiles(seg)].map((f) => f.file), `segment ${id}`)
  const merged = seg.deltalogs.map((fb) => ({ fieldId: fb.fieldId, files: [...fb.files] }))
  for (const fb of deltalogs) {
    const same = merged.find((m) => m.fieldId === fb.fieldId)
    if (same === undefined) merged.push({ fieldId: fb.fieldId, files: [...fb.files] })
    else {
      const logIds = new Set(same.files.map((f) => f.logId).filter((l) => l !== undefined))
      const dup = fb.files.find((f) => f.logId !== undefined && logIds.has(f.logId))
      if (dup !== undefined) throw invalid(`segment ${id} already has a deltalog of field ${fb.fieldId} with logId ${dup.logId}`)
      same.files.push(...fb.files)
    }
  }
  const out: SegmentInfo = { ...seg, deltalogs: merged }
  writeSegment(tx, out)
  return out
}

/**
 * Records a build of the live index `indexName` on a `flushed` segment in `tx`, with a new
 * build ID. An earlier build of the same index on the segment is replaced and recorded as
 * a dropped build (its files become garbage). `NOT_FOUND` when no live index has the name.
 */
export async function addSegmentIndexTx(tx: MetaTxn, id: number, indexName: string, files: SegmentFile[], now: number): Promise<SegmentIndexInfo> {
  const { seg, collection } = await requireMutable(tx, id, 'flushed', 'add an index to')
  const index = (await readLiveIndexes(tx, collection.id)).find((r) => r.name === indexName)
  if (index === undefined) throw new SnapshotError('NOT_FOUND', `index not found: ${collection.name}/${indexName}`)
  checkDistinctKeys(files, [...segmentFiles(seg)].map((f) => f.file), `segment ${id}`)
  const buildId = await tx.allocIds(1)
  const build: SegmentIndexInfo = { indexId: index.id, buildId, files }
  const replaced = seg.indexes.filter((ix) => ix.indexId === index.id)
  for (const old of replaced) {
    writeDroppedBuild(tx, { buildId: old.buildId, kind: 'index', collectionId: seg.collectionId, partitionId: seg.partitionId, segmentId: id, indexId: old.indexId, files: old.files, droppedAt: now })
  }
  if (replaced.length > 0) await bumpDropEpoch(tx, seg.collectionId, [id])
  writeSegment(tx, { ...seg, indexes: [...seg.indexes.filter((ix) => ix.indexId !== index.id), build] })
  return build
}

/**
 * Records a text-match (`textIndexes`) or JSON-key (`jsonKeyIndexes`) index build of a
 * field on a `flushed` segment in `tx`, with a new build ID, replacing (and recording as
 * dropped) an earlier build of that field. `INVALID_ARGUMENT` for an unknown field.
 */
export async function addFieldIndexTx(tx: MetaTxn, list: 'textIndexes' | 'jsonKeyIndexes', id: number, fieldId: number, files: SegmentFile[], now: number): Promise<FieldIndexFiles> {
  const what = list === 'textIndexes' ? 'a text index' : 'a JSON-key index'
  const { seg, collection } = await requireMutable(tx, id, 'flushed', `add ${what} to`)
  if (!collection.schema.fields.some((f) => f.fieldId === fieldId)) throw invalid(`collection ${collection.name} has no field ${fieldId}`)
  checkDistinctKeys(files, [...segmentFiles(seg)].map((f) => f.file), `segment ${id}`)
  const buildId = await tx.allocIds(1)
  const build: FieldIndexFiles = { fieldId, buildId, files }
  const kind = list === 'textIndexes' ? 'textIndex' : 'jsonKeyIndex'
  const replaced = seg[list].filter((t) => t.fieldId === fieldId)
  for (const old of replaced) {
    writeDroppedBuild(tx, { buildId: old.buildId, kind, collectionId: seg.collectionId, partitionId: seg.partitionId, segmentId: id, fieldId, files: old.files, droppedAt: now })
  }
  if (replaced.length > 0) await bumpDropEpoch(tx, seg.collectionId, [id])
  writeSegment(tx, { ...seg, [list]: [...seg[list].filter((t) => t.fieldId !== fieldId), build] })
  return build
}

/**
 * Most source segments one compaction may name. A compaction is one atomic batch (the
 * host must never see the sources dropped without the result, or both live), and each
 * source costs two writes and a checked read, the result two writes and the counters up to
 * four: 29 keep the batch within 64 operations on any store (SPEC section 11). Compact
 * more segments in several calls (each is atomic).
 */
export const MAX_COMPACT_SOURCES = 29

/** What `compactTx` needs. */
export interface Compaction {
  collection: string
  sources: number[]
  result: SegmentData
  level: SegmentLevel
}

/**
 * Compacts in `tx`: every source must be a `flushed` segment of the collection
 * (`NOT_FOUND` unknown, `INVALID_ARGUMENT` another collection, `FAILED_PRECONDITION` not
 * flushed), all in one partition (`INVALID_ARGUMENT`). Writes the result as a new
 * `flushed` segment in the first source's partition and channel, and drops the sources.
 */
export async function compactTx(tx: MetaTxn, o: Compaction, now: number): Promise<SegmentInfo> {
  const c = await requireWritableCollection(tx, o.collection, 'compact')
  const sources: SegmentInfo[] = []
  for (const id of o.sources) {
    const s = await requireSegment(tx, id)
    if (s.collectionId !== c.id) throw invalid(`segment ${id} belongs to collection ${s.collectionId}, not to ${c.name}`)
    if (s.state !== 'flushed') throw new SnapshotError('FAILED_PRECONDITION', `cannot compact segment ${id}: it is ${s.state}, not flushed`)
    if (sources.length > 0 && s.partitionId !== sources[0].partitionId) {
      throw invalid(`segments ${sources[0].id} and ${id} are in different partitions; compaction stays within one partition`)
    }
    sources.push(s)
  }
  checkData(c, o.result, 'result.')
  const sourceFiles = sources.flatMap((s) => [...segmentFiles(s)].map((f) => f.file))
  checkDistinctKeys(filesOf([o.result.binlogs, o.result.statslogs, o.result.deltalogs, o.result.bm25logs]), sourceFiles, 'a source segment')
  const id = await tx.allocIds(1)
  const result: SegmentInfo = {
    ...emptySegment({ id, collectionId: c.id, partitionId: sources[0].partitionId, channel: sources[0].channel, state: 'flushed', level: o.level, createdAt: now }),
    numRows: o.result.numRows,
    binlogs: o.result.binlogs,
    statslogs: o.result.statslogs,
    deltalogs: o.result.deltalogs,
    bm25logs: o.result.bm25logs,
  }
  for (const s of sources) writeSegment(tx, { ...s, state: 'dropped', droppedAt: now })
  writeSegment(tx, result)
  await bumpCollectionVersion(tx, c.id)
  await bumpDropEpoch(tx, c.id, o.sources)
  return result
}

/**
 * Marks a segment `dropped` at `now` in `tx`; a dropped one is left as it is.
 * `FAILED_PRECONDITION` while a restore owns its collection.
 */
export async function dropSegmentTx(tx: MetaTxn, id: number, now: number): Promise<SegmentInfo> {
  const seg = await requireSegment(tx, id)
  if (seg.state === 'dropped') return seg
  const collection = await readCollectionById(tx, seg.collectionId)
  if (collection?.state === 'restoring') throw new SnapshotError('FAILED_PRECONDITION', `cannot drop segment ${id}: collection ${collection.name} is being restored into`)
  const out: SegmentInfo = { ...seg, state: 'dropped', droppedAt: now }
  writeSegment(tx, out)
  await bumpDropEpoch(tx, seg.collectionId, [id])
  return out
}
