import type { Catalog, FieldBinlog, ObjectStore, SegmentFile, SegmentInfo } from '../../src/index.js'
import { concatBytes, decodeFloat32, decodeInt64, encodeFloat32, encodeInt64, encodeJson, sha256 } from './codec.js'
import type { CollectionContext } from './types.js'

/** The rows of one segment, column by column. */
export interface SegmentRows {
  /** Primary keys, one per row. */
  pks: BigInt64Array
  /** Vectors, row-major (`pks.length × dim`). */
  vectors: Float32Array
}

/** The statslog of the primary key: what a reader can skip a segment by. */
export interface PkStats {
  rows: number
  /** Smallest primary key, as a decimal string (JSON has no 64-bit integers). */
  min: string | null
  max: string | null
}

/** Writes `bytes` at `key` and describes it as a catalog file, with its `sha256:` checksum. */
export async function putFile(objects: ObjectStore, key: string, bytes: Uint8Array, extra: Pick<SegmentFile, 'logId' | 'entries'> = {}): Promise<SegmentFile> {
  const info = await objects.put(key, bytes)
  return { key, size: info.size, ...extra, checksum: sha256(bytes) }
}

function pkStats(pks: BigInt64Array): PkStats {
  if (pks.length === 0) return { rows: 0, min: null, max: null }
  let min = pks[0]
  let max = pks[0]
  for (const pk of pks) {
    if (pk < min) min = pk
    if (pk > max) max = pk
  }
  return { rows: pks.length, min: String(min), max: String(max) }
}

/**
 * Writes a segment's insert binlogs (one file per field: the primary keys as
 * little-endian Int64, the vectors as little-endian Float32) and its primary-key
 * statslog, at the keys `catalog.layout` builds from the segment's IDs.
 */
export async function writeSegmentFiles(
  catalog: Catalog,
  objects: ObjectStore,
  c: CollectionContext,
  segment: Pick<SegmentInfo, 'id' | 'partitionId'>,
  rows: SegmentRows,
): Promise<{ binlogs: FieldBinlog[]; statslogs: FieldBinlog[] }> {
  const ids = { collectionId: c.info.id, partitionId: segment.partitionId, segmentId: segment.id, logId: 1 }
  const entries = rows.pks.length
  const [pkFile, vectorFile, statsFile] = await Promise.all([
    putFile(objects, catalog.layout.insertLog({ ...ids, fieldId: c.pkFieldId }), encodeInt64(rows.pks), { logId: 1, entries }),
    putFile(objects, catalog.layout.insertLog({ ...ids, fieldId: c.vectorFieldId }), encodeFloat32(rows.vectors), { logId: 1, entries }),
    putFile(objects, catalog.layout.statsLog({ ...ids, fieldId: c.pkFieldId }), encodeJson(pkStats(rows.pks)), { logId: 1, entries }),
  ])
  return {
    binlogs: [
      { fieldId: c.pkFieldId, files: [pkFile] },
      { fieldId: c.vectorFieldId, files: [vectorFile] },
    ],
    statslogs: [{ fieldId: c.pkFieldId, files: [statsFile] }],
  }
}

/** The files of one field, in log order. */
export function filesOfField(lists: readonly FieldBinlog[], fieldId: number): SegmentFile[] {
  const files = lists.filter((fb) => fb.fieldId === fieldId).flatMap((fb) => fb.files)
  return files.sort((a, b) => (a.logId ?? 0) - (b.logId ?? 0))
}

/** Reads an object that the catalog says exists; a missing one is a broken database. */
export async function getRequired(objects: ObjectStore, key: string): Promise<Uint8Array> {
  const bytes = await objects.get(key)
  if (bytes === undefined) throw new Error(`segment file is missing: ${key}`)
  return bytes
}

async function readField(objects: ObjectStore, lists: readonly FieldBinlog[], fieldId: number): Promise<Uint8Array> {
  const files = filesOfField(lists, fieldId)
  return concatBytes(await Promise.all(files.map((f) => getRequired(objects, f.key))))
}

/** A segment's primary keys, from its insert binlogs. */
export async function readPks(objects: ObjectStore, segment: SegmentInfo, pkFieldId: number): Promise<BigInt64Array> {
  return decodeInt64(await readField(objects, segment.binlogs, pkFieldId))
}

/** A segment's vectors, row-major, from its insert binlogs. */
export async function readVectors(objects: ObjectStore, segment: SegmentInfo, vectorFieldId: number): Promise<Float32Array> {
  return decodeFloat32(await readField(objects, segment.binlogs, vectorFieldId))
}

/** One deltalog: the primary keys it deletes. */
export async function readDeltalog(objects: ObjectStore, file: SegmentFile): Promise<BigInt64Array> {
  return decodeInt64(await getRequired(objects, file.key))
}
