import crypto from 'node:crypto'
import avro from 'avsc'
import { SnapshotError } from '../errors.js'
import type { FieldBinlog, FieldIndexFiles, SegmentFile, SegmentIndexInfo, SegmentLevel } from '../catalog-types.js'
import { longLength, ManifestBodyWriter, writeLongAt } from './manifest-writer.js'
import type { ManifestRecord } from './manifest-types.js'

export type { ManifestRecord } from './manifest-types.js'

/**
 * Segment manifests: one Avro Object Container File per segment, holding exactly one
 * `vecsnap.v1.SegmentManifest` record (IDs, state, level, row count and every file list
 * with sizes). Files are standard Avro (any Avro reader can open them): the header
 * carries the writer schema, the codec (`null`) and `vecsnap.manifest.version`. Readers
 * resolve the writer schema against the reader schema of that version, so manifests
 * written by an older vecsnap keep decoding after the schema grows.
 */

/** The manifest schema version this build writes. */
export const MANIFEST_VERSION = 1

/** Header metadata key holding the manifest schema version. */
export const MANIFEST_VERSION_KEY = 'vecsnap.manifest.version'

const fileSchema = {
  type: 'record',
  name: 'SegmentFile',
  fields: [
    { name: 'key', type: 'string' },
    { name: 'size', type: 'long' },
    { name: 'logId', type: ['null', 'long'], default: null },
    { name: 'entries', type: ['null', 'long'], default: null },
    { name: 'checksum', type: ['null', 'string'], default: null },
  ],
}

const fieldBinlogSchema = {
  type: 'record',
  name: 'FieldBinlog',
  fields: [
    { name: 'fieldId', type: 'long' },
    { name: 'files', type: { type: 'array', items: fileSchema } },
  ],
}

/**
 * Avro schema of manifest version 1. Never change it; add a version 2 instead.
 * (`ManifestBodyWriter` in manifest-writer.ts encodes records of it by hand.)
 */
export const MANIFEST_SCHEMA_V1 = Object.freeze({
  type: 'record',
  name: 'SegmentManifest',
  namespace: 'vecsnap.v1',
  fields: [
    { name: 'segmentId', type: 'long' },
    { name: 'collectionId', type: 'long' },
    { name: 'partitionId', type: 'long' },
    { name: 'channel', type: 'string' },
    { name: 'state', type: 'string' },
    { name: 'level', type: 'string' },
    { name: 'numRows', type: 'long' },
    { name: 'binlogs', type: { type: 'array', items: fieldBinlogSchema } },
    { name: 'statslogs', type: { type: 'array', items: 'FieldBinlog' } },
    { name: 'deltalogs', type: { type: 'array', items: 'FieldBinlog' } },
    { name: 'bm25logs', type: { type: 'array', items: 'FieldBinlog' } },
    {
      name: 'indexes',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'SegmentIndex',
          fields: [
            { name: 'indexId', type: 'long' },
            { name: 'buildId', type: 'long' },
            { name: 'files', type: { type: 'array', items: 'SegmentFile' } },
          ],
        },
      },
    },
    {
      name: 'textIndexes',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'FieldIndex',
          fields: [
            { name: 'fieldId', type: 'long' },
            { name: 'buildId', type: 'long' },
            { name: 'files', type: { type: 'array', items: 'SegmentFile' } },
          ],
        },
      },
    },
    { name: 'jsonKeyIndexes', type: { type: 'array', items: 'FieldIndex' } },
  ],
})

/** An encoded manifest: the file bytes and the content hash used to reuse it. */
export interface EncodedManifest {
  bytes: Uint8Array
  /** 128-bit hash (base64url) of the schema version and the record body; equal hashes mean equal content. */
  hash: string
}

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]) // 'Obj' 1
const SYNC_SIZE = 16

const headerType = avro.Type.forSchema({
  type: 'record',
  name: 'org.apache.avro.file.Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: SYNC_SIZE } },
  ],
})
const longType = avro.Type.forSchema('long')

type Resolver = ReturnType<avro.Type['createResolver']>

/** Reader types by manifest version. A future version 2 adds its schema here and upgrades v1 records on read. */
const readerTypes = new Map<number, avro.Type>([[1, avro.Type.forSchema(MANIFEST_SCHEMA_V1 as avro.Schema)]])
const writerType = readerTypes.get(MANIFEST_VERSION) as avro.Type
const writerSchemaJson = JSON.stringify(writerType.schema())

/** Header bytes up to (not including) the sync marker; the same for every manifest this build writes. */
const headerPrefix = (() => {
  const full = headerType.toBuffer({
    magic: MAGIC,
    meta: {
      'avro.schema': Buffer.from(writerSchemaJson),
      'avro.codec': Buffer.from('null'),
      [MANIFEST_VERSION_KEY]: Buffer.from(String(MANIFEST_VERSION)),
    },
    sync: Buffer.alloc(SYNC_SIZE),
  })
  return full.subarray(0, full.length - SYNC_SIZE)
})()

/** Resolvers from a writer schema (by its JSON) to the reader type of its version. */
const resolvers = new Map<string, Resolver | null>()

interface AvroFile {
  key: string
  size: number
  logId: number | null
  entries: number | null
  checksum: string | null
}

function fromFiles(list: AvroFile[]): SegmentFile[] {
  return list.map((f) => {
    const file: SegmentFile = { key: f.key, size: f.size }
    if (f.logId !== null) file.logId = f.logId
    if (f.entries !== null) file.entries = f.entries
    if (f.checksum !== null) file.checksum = f.checksum
    return file
  })
}

function fromFieldBinlogs(list: { fieldId: number; files: AvroFile[] }[]): FieldBinlog[] {
  return list.map((fb) => ({ fieldId: fb.fieldId, files: fromFiles(fb.files) }))
}

function fromFieldIndexes(list: { fieldId: number; buildId: number; files: AvroFile[] }[]): FieldIndexFiles[] {
  return list.map((t) => ({ fieldId: t.fieldId, buildId: t.buildId, files: fromFiles(t.files) }))
}

function fromAvro(v: any): ManifestRecord {
  return {
    id: v.segmentId,
    collectionId: v.collectionId,
    partitionId: v.partitionId,
    channel: v.channel,
    state: v.state,
    level: v.level as SegmentLevel,
    numRows: v.numRows,
    binlogs: fromFieldBinlogs(v.binlogs),
    statslogs: fromFieldBinlogs(v.statslogs),
    deltalogs: fromFieldBinlogs(v.deltalogs),
    bm25logs: fromFieldBinlogs(v.bm25logs),
    indexes: (v.indexes as { indexId: number; buildId: number; files: AvroFile[] }[]).map(
      (ix): SegmentIndexInfo => ({ indexId: ix.indexId, buildId: ix.buildId, files: fromFiles(ix.files) }),
    ),
    textIndexes: fromFieldIndexes(v.textIndexes),
    jsonKeyIndexes: fromFieldIndexes(v.jsonKeyIndexes),
  }
}

/** SHA-256 of `data`: the one-shot `crypto.hash` where Node has it (20.12+), else a `Hash`. */
const sha256: (data: Uint8Array) => Buffer =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'buffer')
    : (data) => crypto.createHash('sha256').update(data).digest()

/** Encodes manifest bodies for {@link encodeManifest} (one at a time: encoding is synchronous). */
const bodyWriter = new ManifestBodyWriter()
/** What the content hash covers before the body: the schema version. */
const HASH_PREFIX = Buffer.from(`v${MANIFEST_VERSION}:`)
/** The block's object count, 1, as an Avro long. */
const ONE = 2

/** The Avro container file around `body`, with `sync` (the first bytes of the content hash) as its marker. */
function assemble(body: Uint8Array, sync: Uint8Array): Buffer {
  // header (fixed prefix + sync) | count | size | body | sync
  const bytes = Buffer.allocUnsafe(headerPrefix.length + SYNC_SIZE + 1 + longLength(body.byteLength) + body.byteLength + SYNC_SIZE)
  let pos = headerPrefix.copy(bytes, 0)
  bytes.set(sync, pos)
  pos += SYNC_SIZE
  bytes[pos++] = ONE
  pos = writeLongAt(bytes, pos, body.byteLength)
  bytes.set(body, pos)
  bytes.set(sync, pos + body.byteLength)
  return bytes
}

/**
 * Encodes one segment as an Avro container file. The output is deterministic (the sync
 * marker is derived from the content), so equal segments give equal bytes.
 */
export function encodeManifest(m: ManifestRecord): EncodedManifest {
  const hashed = bodyWriter.encode(m, HASH_PREFIX)
  const digest = sha256(hashed)
  return { bytes: assemble(hashed.subarray(HASH_PREFIX.length), digest.subarray(0, SYNC_SIZE)), hash: digest.toString('base64url', 0, SYNC_SIZE) }
}

/** A manifest without its file header: what {@link assembleManifest} turns back into the file. */
export interface ManifestBody {
  /** The Avro record body, base64. */
  body: string
  /** {@link EncodedManifest.hash}; its bytes are the file's sync marker. */
  hash: string
}

/**
 * Encodes one segment's manifest body, to keep and turn into the file later with
 * {@link assembleManifest} (the header, ~1.6 KB of schema, is the same for every manifest).
 */
export function encodeManifestBody(m: ManifestRecord): ManifestBody {
  const hashed = bodyWriter.encode(m, HASH_PREFIX)
  return { body: hashed.toString('base64', HASH_PREFIX.length), hash: sha256(hashed).toString('base64url', 0, SYNC_SIZE) }
}

/** Size in bytes of the file {@link assembleManifest} makes of `m`, without making it. */
export function manifestFileSize(m: ManifestBody): number {
  const b64 = m.body
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0
  const bodyLength = (b64.length / 4) * 3 - padding
  return headerPrefix.length + SYNC_SIZE + 1 + longLength(bodyLength) + bodyLength + SYNC_SIZE
}

/**
 * Whether `hash` has the form {@link EncodedManifest.hash} takes: 16 bytes as base64url,
 * 22 characters, the last of which carries 2 bits (so it decodes back to the same string).
 */
export function isManifestHash(hash: unknown): hash is string {
  return typeof hash === 'string' && /^[A-Za-z0-9_-]{21}[AQgw]$/.test(hash)
}

/** The manifest file {@link encodeManifest} gives for the record that {@link encodeManifestBody} encoded as `m`. */
export function assembleManifest(m: ManifestBody): EncodedManifest {
  return { bytes: assemble(Buffer.from(m.body, 'base64'), Buffer.from(m.hash, 'base64url')), hash: m.hash }
}

function corrupt(key: string, why: string, cause?: unknown): SnapshotError {
  return new SnapshotError('CORRUPT', `manifest ${key} does not decode: ${why}`, { cause, details: { key } })
}

function resolverFor(version: number, schemaJson: string, reader: avro.Type, key: string): Resolver | null {
  const cacheKey = `${version}\u0000${schemaJson}`
  let resolver = resolvers.get(cacheKey)
  if (resolver === undefined) {
    if (schemaJson === writerSchemaJson && reader === writerType) {
      resolver = null
    } else {
      try {
        resolver = reader.createResolver(avro.Type.forSchema(JSON.parse(schemaJson) as avro.Schema))
      } catch (err) {
        throw corrupt(key, 'its writer schema cannot be read as a segment manifest', err)
      }
    }
    if (resolvers.size >= 64) resolvers.clear()
    resolvers.set(cacheKey, resolver)
  }
  return resolver
}

interface ParsedHeader {
  /** Offset of the first data block. */
  offset: number
  sync: Buffer
  reader: avro.Type
  resolver: Resolver | null
}

/** Parses the container header; manifests this build wrote take a byte-compare fast path. */
function parseHeader(buf: Buffer, key: string): ParsedHeader {
  const fast = headerPrefix.length
  if (buf.length > fast + SYNC_SIZE && buf.subarray(0, fast).equals(headerPrefix)) {
    return { offset: fast + SYNC_SIZE, sync: buf.subarray(fast, fast + SYNC_SIZE), reader: writerType, resolver: null }
  }
  let header: { value: { magic: Buffer; meta: Record<string, Buffer>; sync: Buffer }; offset: number }
  try {
    if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not an Avro container file')
    header = headerType.decode(buf, 0)
    if (header.offset < 0) throw new Error('truncated header')
  } catch (err) {
    throw corrupt(key, err instanceof Error ? err.message : String(err), err)
  }
  const meta = header.value.meta
  const rawVersion = meta[MANIFEST_VERSION_KEY]?.toString()
  if (rawVersion === undefined) throw corrupt(key, `no ${MANIFEST_VERSION_KEY} in its header`)
  const version = Number(rawVersion)
  const reader = readerTypes.get(version)
  if (reader === undefined) {
    if (Number.isSafeInteger(version) && version > MANIFEST_VERSION) {
      throw new SnapshotError('UNSUPPORTED_VERSION', `manifest ${key} has version ${rawVersion}; this vecsnap reads up to ${MANIFEST_VERSION}`, {
        details: { key, version: rawVersion },
      })
    }
    throw corrupt(key, `unknown version ${rawVersion}`)
  }
  const codec = meta['avro.codec']?.toString() ?? 'null'
  if (codec !== 'null') throw corrupt(key, `unsupported codec ${codec}`)
  const schemaJson = meta['avro.schema']?.toString()
  if (schemaJson === undefined) throw corrupt(key, 'no avro.schema in its header')
  return { offset: header.offset, sync: header.value.sync, reader, resolver: resolverFor(version, schemaJson, reader, key) }
}

/**
 * Decodes a manifest written by {@link encodeManifest} (this or an older version).
 * Rejects with `CORRUPT` when the bytes are not a one-record Avro container file of a
 * segment manifest, and with `UNSUPPORTED_VERSION` when a newer vecsnap wrote it.
 * @param key The manifest's object key, for error messages.
 */
export function decodeManifest(bytes: Uint8Array, key = 'manifest'): ManifestRecord {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const header = parseHeader(buf, key)
  const { reader, resolver } = header
  try {
    let offset = header.offset
    const count = longType.decode(buf, offset)
    const size = longType.decode(buf, count.offset)
    if (count.offset < 0 || size.offset < 0) throw new Error('truncated block header')
    if (count.value !== 1) throw new Error(`expected one record, found ${count.value}`)
    offset = size.offset
    const end = offset + (size.value as number)
    if (end + SYNC_SIZE !== buf.length) throw new Error('truncated or trailing data')
    if (!buf.subarray(end, end + SYNC_SIZE).equals(header.sync)) throw new Error('sync marker mismatch')
    const body = buf.subarray(offset, end)
    const value = resolver === null ? reader.fromBuffer(body) : reader.fromBuffer(body, resolver)
    return fromAvro(value)
  } catch (err) {
    if (err instanceof SnapshotError) throw err
    throw corrupt(key, err instanceof Error ? err.message : String(err), err)
  }
}
