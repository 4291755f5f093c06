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

const NEWLINE = 0x0a
const SPACE = 0x20
const COMMA = 0x2c
const DASH = 0x2d

/** Byte bounds of the seven fields of a segment line: field `k` is `[f[2k], f[2k + 1])`. */
type LineFields = Uint32Array

/** True when bytes `[start, end)` are one or more ASCII digits (what `/^\d+$/` accepts). */
function isNumber(bytes: Buffer, start: number, end: number): boolean {
  if (start === end) return false
  for (let p = start; p < end; p++) if (bytes[p] < 0x30 || bytes[p] > 0x39) return false
  return true
}

/** The digits `[start, end)` as a number (as `Number` reads them). */
function numberAt(bytes: Buffer, start: number, end: number): number {
  // Past 15 digits a running sum may round differently from `Number`.
  if (end - start > 15) return Number(bytes.toString('latin1', start, end))
  let v = 0
  for (let p = start; p < end; p++) v = v * 10 + bytes[p] - 0x30
  return v
}

/**
 * Parses the header line of a list's bytes; resolves it and where the segment lines
 * start. `CORRUPT` when it is not a list header of this format; `UNSUPPORTED_VERSION` for
 * a newer one.
 */
function parseHeader(bytes: Buffer, key: string): { header: SnapshotListHeader; entriesAt: number } {
  const firstEnd = bytes.indexOf(NEWLINE)
  if (firstEnd < 0) throw corrupt(key, 'no header')
  return { header: headerOf(bytes, key, 0, firstEnd), entriesAt: firstEnd + 1 }
}

/** The header line `[start, end)` of a list (see `parseHeader`). */
function headerOf(bytes: Buffer, key: string, start: number, end: number): SnapshotListHeader {
  let header: SnapshotListHeader
  try {
    header = JSON.parse(bytes.toString('utf8', start, end)) as SnapshotListHeader
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
  return header
}

/**
 * Checks the `count` segment lines from byte `entriesAt` on (and that nothing follows
 * them) without decoding the bytes: hands the bounds of each line's fields to `onEntry`.
 * `CORRUPT` on a line that is not a segment entry, a missing line or trailing data.
 */
function parseEntries(bytes: Buffer, key: string, count: number, entriesAt: number, onEntry: (i: number, f: LineFields) => void): void {
  const f: LineFields = new Uint32Array(14)
  let pos = entriesAt
  for (let i = 0; i < count; i++) {
    const end = bytes.indexOf(NEWLINE, pos)
    if (end < 0) throw missingEntries(key, count, i)
    entryFields(bytes, key, pos, end, i, f)
    onEntry(i, f)
    pos = end + 1
  }
  if (pos !== bytes.byteLength) throw corrupt(key, 'trailing data')
}

function missingEntries(key: string, count: number, found: number): SnapshotError {
  return corrupt(key, `${count} segments announced, ${found} found`)
}

/** Fills `f` with the field bounds of segment line `i`, bytes `[start, end)`; `CORRUPT` unless it is a segment entry. */
function entryFields(bytes: Buffer, key: string, start: number, end: number, i: number, f: LineFields): void {
  let k = 0
  f[0] = start
  for (let p = start; p < end && k < 7; p++) {
    if (bytes[p] !== SPACE) continue
    f[2 * k + 1] = p
    k++
    f[2 * k] = p + 1
  }
  f[13] = end
  if (k !== 6 || !isNumber(bytes, f[0], f[1]) || !isNumber(bytes, f[2], f[3]) || !isNumber(bytes, f[6], f[7]) || !isNumber(bytes, f[8], f[9]) || !isNumber(bytes, f[10], f[11])) {
    throw corrupt(key, `line ${i + 2} is not a segment entry`)
  }
}

/** A list's bytes as a Buffer (no copy). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

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
    const b = asBuffer(bytes)
    const { header, entriesAt } = parseHeader(b, key)
    const n = header.segmentCount
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
    parseEntries(b, key, n, entriesAt, (i, f) => {
      this.segmentIds[i] = numberAt(b, f[0], f[1])
      this.owners[i] = numberAt(b, f[2], f[3])
      this.hashes[i] = b.toString('utf8', f[4], f[5])
      this.manifestSizes[i] = numberAt(b, f[6], f[7])
      this.rows[i] = numberAt(b, f[8], f[9])
      this.bytes[i] = numberAt(b, f[10], f[11])
      this.buildStart[i] = builds.length
      if (f[13] - f[12] === 1 && b[f[12]] === DASH) return
      // As `split(',')` and `Number` read it (an empty field is one build 0, as before).
      for (let s = f[12], p = s; p <= f[13]; p++) {
        if (p < f[13] && b[p] !== COMMA) continue
        builds.push(Number(b.toString('utf8', s, p)))
        s = p + 1
      }
    })
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

/**
 * What restore reads of a list: its header and each segment's ID and manifest owner (two
 * typed arrays, nothing per segment on the V8 heap), after checking the whole list as
 * `SnapshotList` does (`CORRUPT`, `UNSUPPORTED_VERSION`). Made by a
 * {@link ListManifestsParser}, which reads a list a chunk at a time.
 */
export class ListManifests {
  readonly key: string
  readonly header: SnapshotListHeader
  readonly count: number
  readonly segmentIds: Float64Array
  readonly owners: Float64Array

  constructor(key: string, header: SnapshotListHeader, segmentIds: Float64Array, owners: Float64Array) {
    this.key = key
    this.header = header
    this.count = header.segmentCount
    this.segmentIds = segmentIds
    this.owners = owners
  }

  /** A list's whole bytes, parsed. `CORRUPT` when they are not a list of this format; `UNSUPPORTED_VERSION` for a newer one. */
  static decode(bytes: Uint8Array, key: string): ListManifests {
    const parser = new ListManifestsParser(key)
    parser.push(bytes)
    return parser.end()
  }

  /** The manifest key of entry `i`. */
  manifestKey(i: number): string {
    return layout.snapshotManifest(this.header.collection.id, this.owners[i], this.segmentIds[i])
  }
}

/**
 * Parses a list's bytes pushed a chunk at a time (as a stream yields them) into a
 * {@link ListManifests}, checking them as `SnapshotList` does: the same damaged lists
 * throw the same errors, from `push` or `end`. Only the end of a chunk that does not end a
 * line is kept (copied) until the next chunk: the list is never held whole.
 */
export class ListManifestsParser {
  readonly #key: string
  readonly #f: LineFields = new Uint32Array(14)
  #header: SnapshotListHeader | undefined
  #segmentIds = new Float64Array(0)
  #owners = new Float64Array(0)
  /** Segment lines read. */
  #found = 0
  /** The start of a line that the chunks so far did not end. */
  #partial: Buffer[] = []

  constructor(key: string) {
    this.#key = key
  }

  /** Reads the next chunk of the list. */
  push(chunk: Uint8Array): void {
    const b = asBuffer(chunk)
    let pos = 0
    if (this.#partial.length > 0) {
      const nl = b.indexOf(NEWLINE)
      if (nl < 0) {
        this.#partial.push(Buffer.from(b))
        return
      }
      const line = Buffer.concat([...this.#partial, b.subarray(0, nl)])
      this.#partial = []
      this.#line(line, 0, line.byteLength)
      pos = nl + 1
    }
    for (let nl = b.indexOf(NEWLINE, pos); nl >= 0; nl = b.indexOf(NEWLINE, pos)) {
      this.#line(b, pos, nl)
      pos = nl + 1
    }
    if (pos < b.byteLength) this.#partial.push(Buffer.from(b.subarray(pos)))
  }

  /** The list, once every chunk was pushed. `CORRUPT` when it ends early (or with a line that has no newline). */
  end(): ListManifests {
    const header = this.#header
    if (header === undefined) throw corrupt(this.#key, 'no header')
    if (this.#found < header.segmentCount) throw missingEntries(this.#key, header.segmentCount, this.#found)
    if (this.#partial.length > 0) throw corrupt(this.#key, 'trailing data')
    return new ListManifests(this.#key, header, this.#segmentIds, this.#owners)
  }

  /** Line `[start, end)` of `b` (its newline excluded). */
  #line(b: Buffer, start: number, end: number): void {
    const key = this.#key
    if (this.#header === undefined) {
      const header = headerOf(b, key, start, end)
      this.#segmentIds = new Float64Array(header.segmentCount)
      this.#owners = new Float64Array(header.segmentCount)
      this.#header = header
      return
    }
    const i = this.#found
    if (i >= this.#header.segmentCount) throw corrupt(key, 'trailing data')
    const f = this.#f
    entryFields(b, key, start, end, i, f)
    this.#segmentIds[i] = numberAt(b, f[0], f[1])
    this.#owners[i] = numberAt(b, f[2], f[3])
    this.#found = i + 1
  }
}

/** The key of a snapshot's list object. */
export function listKey(collectionId: number, snapshotId: number): string {
  return layout.snapshotList(collectionId, snapshotId)
}
