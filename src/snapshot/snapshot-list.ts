import crypto from 'node:crypto'
import { SnapshotError } from '../errors.js'
import type { IndexInfo } from '../catalog-types.js'
import { layout } from '../storage/layout.js'
import type { SnapshotCollectionMetadata } from './metadata-json.js'

/**
 * The segment list of a snapshot: an immutable object in the ObjectStore,
 * `snapshots/{collectionId}/lists/{snapshotId}.txt`, that holds everything a snapshot
 * records per segment, so that its MetaStore record stays small at any scale (SPEC
 * section 11). A create writes it before the batch that pins it; the record names it
 * with its SHA-256, so readers cache it by key and hash.
 *
 * Text, UTF-8. The first line is a JSON header (what restore needs besides the segments:
 * the collection as captured and the index definitions); then one line per segment, in
 * manifest order, of space-separated fields:
 *
 * ```
 * {segmentId} {manifestOwner} {manifestHash} {manifestSize} {rows} {bytes} {builds}
 * ```
 *
 * `manifestOwner` is the snapshot whose manifest directory holds the segment's manifest
 * (this snapshot, or an earlier one of the same collection whose manifest it reuses);
 * `builds` lists the index, text-index and JSON-key-index builds the segment pins
 * (comma-separated, `-` for none). One line is ~60 bytes: 6 MB at 100k segments, read a
 * line at a time without parsing the whole object into objects.
 */

/** The list format this build writes and reads. */
export const LIST_FORMAT = 1

/** The first line of a list object. */
export interface SnapshotListHeader {
  vecsnapList: typeof LIST_FORMAT
  snapshotId: number
  snapshotName: string
  collection: SnapshotCollectionMetadata
  /** Index definitions live at snapshot time, with their IDs. */
  indexes: IndexInfo[]
  segmentCount: number
  rowCount: number
  sizeBytes: number
}

/** One segment of a list. */
export interface ListEntry {
  segmentId: number
  /** Snapshot whose manifest directory holds the manifest. */
  manifestOwner: number
  manifestHash: string
  manifestSize: number
  rows: number
  bytes: number
  builds: readonly number[]
}

/** The list object of a snapshot and its identity. */
export interface ListRef {
  key: string
  /** SHA-256 of the bytes, base64url. */
  hash: string
  size: number
}

/** SHA-256 of bytes, base64url: how records name the content of a list object. */
export function contentHash(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('base64url')
}

/** Encodes a list; resolves its bytes and hash. */
export function encodeList(header: SnapshotListHeader, entries: readonly ListEntry[]): { bytes: Buffer; hash: string } {
  const lines: string[] = [JSON.stringify(header)]
  for (const e of entries) {
    lines.push(`${e.segmentId} ${e.manifestOwner} ${e.manifestHash} ${e.manifestSize} ${e.rows} ${e.bytes} ${e.builds.length === 0 ? '-' : e.builds.join(',')}`)
  }
  const bytes = Buffer.from(lines.join('\n') + '\n')
  return { bytes, hash: contentHash(bytes) }
}

function corrupt(key: string, why: string, cause?: unknown): SnapshotError {
  return new SnapshotError('CORRUPT', `snapshot list ${key} is unreadable: ${why}`, { cause, details: { key } })
}

const NUMBER = /^\d+$/

/**
 * A decoded list: the header parsed, the segments kept as compact columns (typed arrays
 * and one string per hash), not as an object per segment.
 */
export class SnapshotList {
  readonly key: string
  readonly header: SnapshotListHeader
  readonly count: number
  readonly segmentIds: Float64Array
  readonly owners: Float64Array
  readonly manifestSizes: Float64Array
  readonly rows: Float64Array
  readonly bytes: Float64Array
  readonly hashes: string[]
  /** Builds of entry `i`: `buildIds[buildStart[i] … buildStart[i + 1])`. */
  readonly buildIds: Float64Array
  readonly buildStart: Uint32Array

  /** `CORRUPT` when the bytes are not a list of this format; `UNSUPPORTED_VERSION` for a newer one. */
  constructor(bytes: Uint8Array, key: string) {
    this.key = key
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
    const firstEnd = text.indexOf('\n')
    if (firstEnd < 0) throw corrupt(key, 'no header')
    let header: SnapshotListHeader
    try {
      header = JSON.parse(text.slice(0, firstEnd)) as SnapshotListHeader
    } catch (err) {
      throw corrupt(key, 'the header is not JSON', err)
    }
    if (typeof header !== 'object' || header === null || typeof header.vecsnapList !== 'number') throw corrupt(key, 'no list header')
    if (header.vecsnapList !== LIST_FORMAT) {
      throw new SnapshotError('UNSUPPORTED_VERSION', `snapshot list ${key} has format ${header.vecsnapList}; this vecsnap reads ${LIST_FORMAT}`, {
        details: { key, format: header.vecsnapList },
      })
    }
    const n = header.segmentCount
    if (!Number.isSafeInteger(n) || n < 0) throw corrupt(key, 'bad segment count')
    this.header = header
    this.count = n
    this.segmentIds = new Float64Array(n)
    this.owners = new Float64Array(n)
    this.manifestSizes = new Float64Array(n)
    this.rows = new Float64Array(n)
    this.bytes = new Float64Array(n)
    this.hashes = new Array<string>(n)
    this.buildStart = new Uint32Array(n + 1)
    const builds: number[] = []
    let pos = firstEnd + 1
    for (let i = 0; i < n; i++) {
      const end = text.indexOf('\n', pos)
      if (end < 0) throw corrupt(key, `${n} segments announced, ${i} found`)
      const f = text.slice(pos, end).split(' ')
      if (f.length !== 7 || !NUMBER.test(f[0]) || !NUMBER.test(f[1]) || !NUMBER.test(f[3]) || !NUMBER.test(f[4]) || !NUMBER.test(f[5])) {
        throw corrupt(key, `line ${i + 2} is not a segment entry`)
      }
      this.segmentIds[i] = Number(f[0])
      this.owners[i] = Number(f[1])
      this.hashes[i] = f[2]
      this.manifestSizes[i] = Number(f[3])
      this.rows[i] = Number(f[4])
      this.bytes[i] = Number(f[5])
      this.buildStart[i] = builds.length
      if (f[6] !== '-') for (const b of f[6].split(',')) builds.push(Number(b))
      pos = end + 1
    }
    if (pos !== text.length) throw corrupt(key, 'trailing data')
    this.buildStart[n] = builds.length
    this.buildIds = Float64Array.from(builds)
  }

  /** The manifest key of entry `i`. */
  manifestKey(i: number): string {
    return layout.snapshotManifest(this.header.collection.id, this.owners[i], this.segmentIds[i])
  }

  /** Entry `i` as an object. */
  entry(i: number): ListEntry {
    return {
      segmentId: this.segmentIds[i],
      manifestOwner: this.owners[i],
      manifestHash: this.hashes[i],
      manifestSize: this.manifestSizes[i],
      rows: this.rows[i],
      bytes: this.bytes[i],
      builds: Array.from(this.buildIds.subarray(this.buildStart[i], this.buildStart[i + 1])),
    }
  }
}

/** The key of a snapshot's list object. */
export function listKey(collectionId: number, snapshotId: number): string {
  return layout.snapshotList(collectionId, snapshotId)
}
