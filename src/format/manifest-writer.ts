import type { FieldBinlog, FieldIndexFiles, SegmentFile, SegmentIndexInfo } from '../catalog-types.js'
import type { ManifestRecord } from './manifest-types.js'

/**
 * The Avro binary encoding of a version-1 manifest record, written straight from a
 * {@link ManifestRecord} into a reused buffer. It gives exactly the bytes avsc's
 * `toBuffer` gives for `MANIFEST_SCHEMA_V1` (test/snapshot/codec.test.ts compares them on
 * generated records), without building the intermediate Avro object and one buffer per
 * manifest. A create encodes every segment it captures, so this is on its hot path.
 *
 * Avro's binary encoding of a record is its fields in schema order: a `long` as a zigzag
 * varint, a `string` as its UTF-8 length then bytes, a `["null", T]` union as the branch
 * index then the value, an array as one block (item count, items) then a 0 count. The
 * schema itself is `MANIFEST_SCHEMA_V1` in manifest-codec.ts; this file must follow it
 * field for field, and a version 2 gets its own writer.
 */

/** A writer that grew past this (for an unusually large manifest) starts the next one with a fresh buffer. */
const MAX_KEPT_BYTES = 1 << 20

/** avsc's range of a `long` (it refuses values whose doubling could lose precision). */
const MAX_LONG = 9007199254740990

function invalid(type: string, value: unknown): Error {
  return new Error(`invalid ${JSON.stringify(type)}: ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`)
}

/** Number of bytes of `n` (a valid long) as a zigzag varint. */
export function longLength(n: number): number {
  let f = n >= 0 ? n * 2 : -n * 2 - 1
  let len = 1
  while (f >= 128) {
    f /= 128
    len++
  }
  return len
}

/** Writes `n` (a valid long) as a zigzag varint at `pos` (room for 10 bytes is the caller's); returns the next position. Same arithmetic as avsc's `Tap.writeLong`. */
export function writeLongAt(buf: Buffer, pos: number, n: number): number {
  if (n >= -1073741824 && n < 1073741824) {
    let m = n >= 0 ? n << 1 : (~n << 1) | 1
    do {
      buf[pos] = m & 0x7f
      m >>= 7
    } while (m && (buf[pos++] |= 0x80))
  } else {
    let f = n >= 0 ? n * 2 : -n * 2 - 1
    do {
      buf[pos] = f & 0x7f
      f /= 128
    } while (f >= 1 && (buf[pos++] |= 0x80))
  }
  return pos + 1
}

/**
 * Encodes manifest records one at a time into a buffer it keeps and grows. Not
 * reentrant: the view {@link ManifestBodyWriter.encode} returns is valid until the next call.
 */
export class ManifestBodyWriter {
  readonly #initialBytes: number
  #buf: Buffer
  #pos = 0

  constructor(initialBytes = 16_384) {
    this.#initialBytes = initialBytes
    this.#buf = Buffer.allocUnsafe(initialBytes)
  }

  /**
   * Writes `prefix` then the Avro encoding of `m`, and returns a view of both (valid until
   * the next call). Throws an `Error` naming the value, as avsc does, when a field does not
   * fit its Avro type.
   */
  encode(m: ManifestRecord, prefix: Uint8Array): Buffer {
    if (this.#buf.length > MAX_KEPT_BYTES) this.#buf = Buffer.allocUnsafe(this.#initialBytes)
    this.#pos = 0
    this.#reserve(prefix.byteLength)
    this.#buf.set(prefix, 0)
    this.#pos = prefix.byteLength
    this.#long(m.id)
    this.#long(m.collectionId)
    this.#long(m.partitionId)
    this.#string(m.channel)
    this.#string(m.state)
    this.#string(m.level)
    this.#long(m.numRows)
    this.#fieldBinlogs(m.binlogs)
    this.#fieldBinlogs(m.statslogs)
    this.#fieldBinlogs(m.deltalogs)
    this.#fieldBinlogs(m.bm25logs)
    this.#indexes(m.indexes)
    this.#fieldIndexes(m.textIndexes)
    this.#fieldIndexes(m.jsonKeyIndexes)
    return this.#buf.subarray(0, this.#pos)
  }

  #reserve(bytes: number): void {
    const need = this.#pos + bytes
    if (need <= this.#buf.length) return
    const grown = Buffer.allocUnsafe(Math.max(need, this.#buf.length * 2))
    this.#buf.copy(grown, 0, 0, this.#pos)
    this.#buf = grown
  }

  #long(n: number): void {
    if (typeof n !== 'number' || n % 1 !== 0 || !(n >= -MAX_LONG && n <= MAX_LONG)) throw invalid('long', n)
    this.#reserve(10)
    this.#pos = writeLongAt(this.#buf, this.#pos, n)
  }

  /** `["null", "long"]`: `undefined` and `null` take the null branch. */
  #optionalLong(n: number | undefined): void {
    if (n === undefined || n === null) {
      this.#count(0)
    } else {
      this.#count(1)
      this.#long(n)
    }
  }

  /** A count or branch index (known valid). */
  #count(n: number): void {
    this.#reserve(10)
    this.#pos = writeLongAt(this.#buf, this.#pos, n)
  }

  #string(s: string): void {
    if (typeof s !== 'string') throw invalid('string', s)
    const len = Buffer.byteLength(s)
    this.#count(len)
    this.#reserve(len)
    const buf = this.#buf
    let pos = this.#pos
    if (len === s.length || len > 64) {
      // ASCII (one byte per code unit), or long: avsc writes these with `utf8Write` too.
      buf.write(s, pos, len, 'utf8')
      this.#pos = pos + len
      return
    }
    // Short non-ASCII strings: avsc's own loop, byte for byte (it differs from `utf8Write`
    // only for unpaired surrogates).
    for (let i = 0; i < s.length; i++) {
      let c1 = s.charCodeAt(i)
      let c2: number
      if (c1 < 0x80) {
        buf[pos++] = c1
      } else if (c1 < 0x800) {
        buf[pos++] = (c1 >> 6) | 0xc0
        buf[pos++] = (c1 & 0x3f) | 0x80
      } else if ((c1 & 0xfc00) === 0xd800 && ((c2 = s.charCodeAt(i + 1)) & 0xfc00) === 0xdc00) {
        c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (c2 & 0x03ff)
        i++
        buf[pos++] = (c1 >> 18) | 0xf0
        buf[pos++] = ((c1 >> 12) & 0x3f) | 0x80
        buf[pos++] = ((c1 >> 6) & 0x3f) | 0x80
        buf[pos++] = (c1 & 0x3f) | 0x80
      } else {
        buf[pos++] = (c1 >> 12) | 0xe0
        buf[pos++] = ((c1 >> 6) & 0x3f) | 0x80
        buf[pos++] = (c1 & 0x3f) | 0x80
      }
    }
    this.#pos = this.#pos + len
  }

  #array<T>(list: readonly T[] | undefined, item: (value: T) => void): void {
    if (list === undefined || list === null) list = []
    if (!Array.isArray(list)) throw invalid('array', list)
    if (list.length > 0) {
      this.#count(list.length)
      for (let i = 0; i < list.length; i++) item(list[i])
    }
    this.#count(0)
  }

  #files(files: readonly SegmentFile[] | undefined): void {
    this.#array(files, (f) => {
      this.#string(f.key)
      this.#long(f.size)
      this.#optionalLong(f.logId)
      this.#optionalLong(f.entries)
      if (f.checksum === undefined || f.checksum === null) {
        this.#count(0)
      } else {
        this.#count(1)
        this.#string(f.checksum)
      }
    })
  }

  #fieldBinlogs(list: readonly FieldBinlog[] | undefined): void {
    this.#array(list, (fb) => {
      this.#long(fb.fieldId)
      this.#files(fb.files)
    })
  }

  #indexes(list: readonly SegmentIndexInfo[] | undefined): void {
    this.#array(list, (ix) => {
      this.#long(ix.indexId)
      this.#long(ix.buildId)
      this.#files(ix.files)
    })
  }

  #fieldIndexes(list: readonly FieldIndexFiles[] | undefined): void {
    this.#array(list, (t) => {
      this.#long(t.fieldId)
      this.#long(t.buildId)
      this.#files(t.files)
    })
  }
}
