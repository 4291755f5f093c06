import type { SegmentInfo, SegmentState } from '../catalog-types.js'
import { encodeManifestBody, isManifestHash, MANIFEST_VERSION, type ManifestBody } from './manifest-codec.js'
import type { ManifestRecord } from './manifest-types.js'

/**
 * What a snapshot records of a segment, computed when the segment is written.
 *
 * A flushed segment does not change until compaction drops it, and every snapshot of it
 * writes the same manifest. So `writeSegment` stores, next to the segment, its manifest's
 * Avro body and hash (the manifest a snapshot writes while every index the segment has is
 * live; the file header around it is the same for every manifest) and the figures a
 * snapshot sums (rows, bytes, index builds), in the value of the segment's entry in the
 * collection's segment index (`c/coll-seg/{collection}/{segment}`). A
 * create then reads one range of small values instead of parsing every segment record and
 * encoding and hashing every manifest: ~10 µs a segment instead of ~50.
 *
 * A create uses a stored capture when every index it includes is live; a segment with
 * files of a dropped index (until GC strips them) is read from its record and encoded
 * without them. The catalog writes every entry through `storedCapture`; an entry that
 * does not read back is refused as corrupt, never silently re-derived.
 */

/**
 * Format of a stored capture. An entry of another format does not read back (`readCapture`
 * resolves undefined) and a create refuses it as `CORRUPT`: a new capture format must come
 * with a new MetaStore layout version (`v/layout`), which `open()` checks first.
 */
export const CAPTURE_FORMAT = 1

/** A stored capture, as read back. */
export interface SegmentCapture {
  state: SegmentState
  partitionId: number
  /** The rest is present for flushed segments only. */
  flushed?: {
    rows: number
    bytes: number
    /** Index builds the manifest lists (segment index, text and JSON-key indexes), in manifest order. */
    builds: number[]
    /** Segment index definitions the manifest includes files of. */
    indexIds: number[]
    /** The manifest's body and hash (`assembleManifest` makes the file, only when a create writes it). */
    manifest: ManifestBody
  }
}

/** The stored form (JSON). */
interface StoredCapture {
  v: number
  state: SegmentState
  p: number
  manifestVersion?: number
  rows?: number
  bytes?: number
  builds?: number[]
  indexIds?: number[]
  hash?: string
  /** The manifest's Avro body, base64 (the file header is the same for every manifest). */
  body?: string
}

/** The segment as a snapshot captures it: only index files of live index definitions (all of them without `liveIndexIds`). */
export function captureSegment(seg: SegmentInfo, liveIndexIds?: ReadonlySet<number>): ManifestRecord {
  const indexes = seg.indexes ?? []
  return {
    id: seg.id,
    collectionId: seg.collectionId,
    partitionId: seg.partitionId,
    channel: seg.channel,
    state: seg.state,
    level: seg.level,
    numRows: seg.numRows,
    binlogs: seg.binlogs ?? [],
    statslogs: seg.statslogs ?? [],
    deltalogs: seg.deltalogs ?? [],
    bm25logs: seg.bm25logs ?? [],
    indexes: liveIndexIds === undefined ? indexes : indexes.filter((ix) => liveIndexIds.has(ix.indexId)),
    textIndexes: seg.textIndexes ?? [],
    jsonKeyIndexes: seg.jsonKeyIndexes ?? [],
  }
}

/**
 * Summed size of every file of a captured segment (what `segmentBytes` sums, without a
 * generator per segment); pushes the builds it holds to `builds` on the way.
 */
export function capturedBytes(m: ManifestRecord, builds: number[]): number {
  let total = 0
  for (const lists of [m.binlogs, m.statslogs, m.deltalogs, m.bm25logs]) {
    for (const fb of lists) for (const f of fb.files) total += f.size
  }
  for (const lists of [m.indexes, m.textIndexes, m.jsonKeyIndexes]) {
    for (const built of lists) {
      builds.push(built.buildId)
      for (const f of built.files) total += f.size
    }
  }
  return total
}

/**
 * The value `writeSegment` stores in the segment's collection index entry: its capture,
 * or `''` when the segment does not encode (the catalog validates segments first, so only a
 * record it did not write); a create refuses such an entry as `CORRUPT`.
 */
export function storedCapture(seg: SegmentInfo): string {
  if (seg.state !== 'flushed') return JSON.stringify({ v: CAPTURE_FORMAT, state: seg.state, p: seg.partitionId } satisfies StoredCapture)
  try {
    const m = captureSegment(seg)
    const { body, hash } = encodeManifestBody(m)
    const builds: number[] = []
    const bytes = capturedBytes(m, builds)
    const stored: StoredCapture = {
      v: CAPTURE_FORMAT,
      state: seg.state,
      p: seg.partitionId,
      manifestVersion: MANIFEST_VERSION,
      rows: seg.numRows,
      bytes,
      builds,
      indexIds: m.indexes.map((ix) => ix.indexId),
      hash,
      body,
    }
    return JSON.stringify(stored)
  } catch {
    // A record the manifest encoder refuses (a create then fails on it, as it always did).
    return ''
  }
}

const isIdList = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isSafeInteger(x))

/**
 * Reads a stored capture back; `undefined` when there is none a create can use (empty,
 * another format or manifest version, or damaged).
 */
export function readCapture(value: string): SegmentCapture | undefined {
  if (value === '') return undefined
  let s: StoredCapture
  try {
    s = JSON.parse(value) as StoredCapture
  } catch {
    return undefined
  }
  if (typeof s !== 'object' || s === null || s.v !== CAPTURE_FORMAT || typeof s.state !== 'string' || !Number.isSafeInteger(s.p)) return undefined
  if (s.state !== 'flushed') return { state: s.state, partitionId: s.p }
  const { rows, bytes, builds, indexIds, hash, body } = s
  if (s.manifestVersion !== MANIFEST_VERSION || !isManifestHash(hash) || typeof body !== 'string') return undefined
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(bytes) || !isIdList(builds) || !isIdList(indexIds)) return undefined
  return { state: s.state, partitionId: s.p, flushed: { rows: rows!, bytes: bytes!, builds, indexIds, manifest: { body, hash } } }
}
