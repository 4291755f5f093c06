import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import avro from 'avsc'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  assembleManifest,
  encodeManifestBody,
  isManifestHash,
  decodeManifest,
  encodeManifest,
  MANIFEST_SCHEMA_V1,
  MANIFEST_VERSION_KEY,
  type ManifestRecord,
} from '../../src/format/manifest-codec.js'
import { decodeMetadata, encodeMetadata, readMetadataVersion } from '../../src/snapshot/metadata-json.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { MemoryObjects } from '../helpers/memory-objects.js'
import { manifestRecord } from '../helpers/seed.js'

const fixture = (name: string): Buffer => readFileSync(new URL(`./fixtures/${name}`, import.meta.url))

/** The record the golden manifest was generated from (kept as a file so the test cannot drift with the code). */
const goldenRecord = JSON.parse(fixture('manifest-v1.expected.json').toString()) as ManifestRecord

function sample(overrides: Partial<ManifestRecord> = {}): ManifestRecord {
  return { ...manifestRecord(7, 10), ...overrides }
}

/** Builds an Avro container file by hand, with any schema and header metadata. */
function container(schema: object, record: unknown, meta: Record<string, string>): Buffer {
  const header = avro.Type.forSchema({
    type: 'record',
    name: 'Header',
    fields: [
      { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
      { name: 'meta', type: { type: 'map', values: 'bytes' } },
      { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
    ],
  })
  const sync = Buffer.alloc(16, 7)
  const metaBytes = Object.fromEntries(Object.entries({ 'avro.schema': JSON.stringify(schema), 'avro.codec': 'null', ...meta }).map(([k, v]) => [k, Buffer.from(v)]))
  const body = avro.Type.forSchema(schema as avro.Schema).toBuffer(record)
  const long = avro.Type.forSchema('long')
  return Buffer.concat([header.toBuffer({ magic: Buffer.from('Obj\x01', 'latin1'), meta: metaBytes, sync }), long.toBuffer(1), long.toBuffer(body.length), body, sync])
}

describe('manifest codec', () => {
  it('round-trips every file class, optional fields included', () => {
    const m = goldenRecord
    expect(decodeManifest(encodeManifest(m).bytes)).toEqual(m)
  })

  it('decodes the golden v1 manifest (old manifests keep decoding)', () => {
    expect(decodeManifest(fixture('manifest-v1.avro'), 'golden')).toEqual(goldenRecord)
  })

  it('still writes v1 byte for byte (a schema change must add a version instead)', () => {
    expect(Buffer.from(encodeManifest(goldenRecord).bytes).equals(fixture('manifest-v1.avro'))).toBe(true)
  })

  it('turns a kept body and hash back into the same file (segment captures)', () => {
    const body = encodeManifestBody(goldenRecord)
    const encoded = encodeManifest(goldenRecord)
    expect(body.hash).toBe(encoded.hash)
    expect(isManifestHash(body.hash)).toBe(true)
    for (const bad of [undefined, '', body.hash.slice(1), `${body.hash}A`, `${body.hash.slice(0, 21)}B`, `${body.hash.slice(0, 21)}=`]) expect(isManifestHash(bad)).toBe(false)
    expect(Buffer.from(assembleManifest(body).bytes).equals(fixture('manifest-v1.avro'))).toBe(true)
    // The body alone: the file minus its ~1.6 KB header.
    expect(Buffer.from(body.body, 'base64').byteLength).toBeLessThan(encoded.bytes.byteLength - 1500)
  })

  it('writes standard Avro container files that any Avro reader opens', async () => {
    const decoder = new avro.streams.BlockDecoder()
    const records: Record<string, unknown>[] = []
    await new Promise<void>((resolve, reject) => {
      decoder.on('data', (r: Record<string, unknown>) => records.push(r)).on('end', resolve).on('error', reject)
      Readable.from([fixture('manifest-v1.avro')]).pipe(decoder)
    })
    expect(records).toHaveLength(1)
    expect(records[0].segmentId).toBe(4101)
    expect(records[0].numRows).toBe(2048)
  })

  it('encodes record bodies exactly as avsc does (the writer hand-encodes schema v1)', () => {
    const avscType = avro.Type.forSchema(MANIFEST_SCHEMA_V1 as avro.Schema)
    const long = fc.oneof(fc.integer(), fc.integer({ min: -(2 ** 53) + 2, max: 2 ** 53 - 2 }), fc.constantFrom(0, -1, 63, 64, -64, -65, 2 ** 30, -(2 ** 30), 2 ** 31, 2 ** 53 - 2, -(2 ** 53) + 2))
    const text = fc.oneof(fc.constantFrom('', 'é', '\ud800', 'a\udc00b', '😀\ud83d', 'x'.repeat(64) + 'é', 'é'.repeat(40) + '\ud800', 'é'.repeat(29) + '\ud800'), fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ minLength: 60, maxLength: 200 }))
    const file = fc.record(
      { key: text, size: long, logId: fc.option(long, { nil: undefined }), entries: fc.option(long, { nil: undefined }), checksum: fc.option(text, { nil: undefined }) },
      { requiredKeys: ['key', 'size'] },
    )
    const files = fc.array(file, { maxLength: 4 })
    const fieldBinlogs = fc.array(fc.record({ fieldId: long, files }), { maxLength: 3 })
    const fieldIndexes = fc.array(fc.record({ fieldId: long, buildId: long, files }), { maxLength: 3 })
    const record = fc.record({
      id: long, collectionId: long, partitionId: long, channel: text, state: text, level: text, numRows: long,
      binlogs: fieldBinlogs, statslogs: fieldBinlogs, deltalogs: fieldBinlogs, bm25logs: fieldBinlogs,
      indexes: fc.array(fc.record({ indexId: long, buildId: long, files }), { maxLength: 3 }),
      textIndexes: fieldIndexes, jsonKeyIndexes: fieldIndexes,
    })
    const avroFile = (f: { key: string; size: number; logId?: number; entries?: number; checksum?: string }) =>
      ({ key: f.key, size: f.size, logId: f.logId ?? null, entries: f.entries ?? null, checksum: f.checksum ?? null })
    const avroLists = (list: { files: Parameters<typeof avroFile>[0][] }[]) => list.map((x) => ({ ...x, files: x.files.map(avroFile) }))
    fc.assert(
      fc.property(record, (r) => {
        const m = r as unknown as ManifestRecord
        const expected = avscType.toBuffer({
          segmentId: r.id, collectionId: r.collectionId, partitionId: r.partitionId, channel: r.channel, state: r.state, level: r.level, numRows: r.numRows,
          binlogs: avroLists(r.binlogs), statslogs: avroLists(r.statslogs), deltalogs: avroLists(r.deltalogs), bm25logs: avroLists(r.bm25logs),
          indexes: avroLists(r.indexes), textIndexes: avroLists(r.textIndexes), jsonKeyIndexes: avroLists(r.jsonKeyIndexes),
        })
        const bytes = Buffer.from(encodeManifest(m).bytes)
        // header prefix | sync (16) | count | size | body | sync (16)
        const size = avro.Type.forSchema('long').toBuffer(expected.length)
        const body = bytes.subarray(bytes.length - 16 - expected.length, bytes.length - 16)
        expect(body.equals(expected)).toBe(true)
        expect(bytes.subarray(bytes.length - 16 - expected.length - size.length - 1, bytes.length - 16 - expected.length).equals(Buffer.concat([Buffer.from([2]), size]))).toBe(true)
        // A segment capture keeps only the body and hash; assembled, it is the same file.
        const kept = encodeManifestBody(m)
        expect(Buffer.from(kept.body, 'base64').equals(expected)).toBe(true)
        expect(Buffer.from(assembleManifest(kept).bytes).equals(bytes)).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('encodes manifests of any size, before and after a large one', () => {
    const files = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `files/insert_log/1/2/7/100/${i}`, size: i, logId: i }))
    for (const n of [1, 400, 30_000, 2]) {
      const m = sample({ binlogs: [{ fieldId: 100, files: files(n) }] })
      expect(decodeManifest(encodeManifest(m).bytes)).toEqual(m)
    }
  })

  it('rejects a field that does not fit its Avro type', () => {
    expect(() => encodeManifest(sample({ numRows: 1.5 }))).toThrow(/invalid "long"/)
    expect(() => encodeManifest(sample({ numRows: 2 ** 60 }))).toThrow(/invalid "long"/)
    expect(() => encodeManifest(sample({ channel: 7 as unknown as string }))).toThrow(/invalid "string"/)
    // and leaves the writer usable
    expect(decodeManifest(encodeManifest(sample()).bytes)).toEqual(sample())
  })

  it('is deterministic and hashes content', () => {
    const a = encodeManifest(sample())
    const b = encodeManifest(sample())
    const c = encodeManifest(sample({ deltalogs: [{ fieldId: 100, files: [{ key: 'files/delta_log/1/2/7/100/9', size: 8 }] }] }))
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true)
    expect(a.hash).toBe(b.hash)
    expect(c.hash).not.toBe(a.hash)
  })

  it('resolves an older writer schema against the reader schema (fields added later take their defaults)', () => {
    // A v1 writer that did not know `entries` and `checksum` yet.
    const schema = JSON.parse(JSON.stringify(MANIFEST_SCHEMA_V1))
    // binlogs → FieldBinlog.files → SegmentFile, the one place SegmentFile is defined inline
    const segmentFile = schema.fields[7].type.items.fields[1].type.items
    segmentFile.fields = segmentFile.fields.filter((f: { name: string }) => f.name !== 'entries' && f.name !== 'checksum')
    const old = {
      segmentId: 9, collectionId: 1, partitionId: 2, channel: 'c', state: 'flushed', level: 'L0', numRows: 0,
      binlogs: [{ fieldId: 100, files: [{ key: 'files/x', size: 1, logId: null }] }],
      statslogs: [], deltalogs: [], bm25logs: [], indexes: [], textIndexes: [], jsonKeyIndexes: [],
    }
    const decoded = decodeManifest(container(schema, old, { [MANIFEST_VERSION_KEY]: '1' }), 'old')
    expect(decoded.id).toBe(9)
    expect(decoded.level).toBe('L0')
    expect(decoded.binlogs).toEqual([{ fieldId: 100, files: [{ key: 'files/x', size: 1 }] }])
  })

  it('refuses a manifest of a newer version with UNSUPPORTED_VERSION', () => {
    const record = {
      segmentId: 1, collectionId: 1, partitionId: 1, channel: '', state: 'flushed', level: 'L1', numRows: 0,
      binlogs: [], statslogs: [], deltalogs: [], bm25logs: [], indexes: [], textIndexes: [], jsonKeyIndexes: [],
    }
    const bytes = container(MANIFEST_SCHEMA_V1, record, { [MANIFEST_VERSION_KEY]: '2' })
    expect(() => decodeManifest(bytes, 'k')).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_VERSION' }))
  })

  it.each([
    ['empty', Buffer.alloc(0)],
    ['not avro', Buffer.from('{"hello":"world"}')],
    ['truncated', fixture('manifest-v1.avro').subarray(0, 1500)],
    ['trailing bytes', Buffer.concat([fixture('manifest-v1.avro'), Buffer.from([0])])],
    ['bad sync marker', (() => { const b = Buffer.from(fixture('manifest-v1.avro')); b[b.length - 1] ^= 0xff; return b })()],
    ['no version', container({ type: 'record', name: 'X', fields: [{ name: 'a', type: 'long' }] }, { a: 1 }, {})],
    ['foreign schema', container({ type: 'record', name: 'X', fields: [{ name: 'a', type: 'long' }] }, { a: 1 }, { [MANIFEST_VERSION_KEY]: '1' })],
  ])('rejects %s with CORRUPT', (_, bytes) => {
    expect(() => decodeManifest(bytes, 'k')).toThrow(expect.objectContaining({ code: 'CORRUPT' }))
  })
})

describe('metadata JSON', () => {
  it('decodes the golden v1 metadata', () => {
    const m = decodeMetadata(fixture('metadata-v1.json'), 'golden')
    expect(m.formatVersion).toBe(1)
    expect(m.snapshot).toMatchObject({ id: 4301, name: 'golden-v1', collectionId: 4001, segmentCount: 1, rowCount: 2048 })
    expect(m.collection.schema.fields.map((f) => f.fieldId)).toEqual([100, 101, 102, 103])
    expect(m.collection.partitions).toEqual([{ id: 4002, name: '_default' }])
    expect(m.indexes).toEqual([{ id: 4003, fieldId: 101, name: 'vec_idx', params: { index_type: 'HNSW', metric_type: 'L2', M: '16' } }])
    expect(m.manifests).toEqual(['snapshots/4001/manifests/4301/4101.avro'])
  })

  it('round-trips', () => {
    const m = decodeMetadata(fixture('metadata-v1.json'))
    expect(decodeMetadata(encodeMetadata(m))).toEqual(m)
  })

  it.each([2, 0, '1', undefined, null])('refuses formatVersion %j with UNSUPPORTED_VERSION', (v) => {
    const m = JSON.parse(fixture('metadata-v1.json').toString()) as Record<string, unknown>
    m.formatVersion = v
    expect(() => decodeMetadata(Buffer.from(JSON.stringify(m)))).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_VERSION' }))
  })

  it.each([
    ['not JSON', Buffer.from('{nope')],
    ['not an object', Buffer.from('[1]')],
    ['no manifests', Buffer.from(JSON.stringify({ ...JSON.parse(fixture('metadata-v1.json').toString()), manifests: undefined }))],
    ['no collection', Buffer.from(JSON.stringify({ ...JSON.parse(fixture('metadata-v1.json').toString()), collection: 1 }))],
  ])('rejects %s with CORRUPT', (_, bytes) => {
    expect(() => decodeMetadata(bytes)).toThrow(expect.objectContaining({ code: 'CORRUPT' }))
  })
})

describe('readMetadataVersion', () => {
  /** A store holding one object, streamed in chunks of `size` bytes; counts the chunks read. */
  function chunkedStore(bytes: Buffer, size: number): { objects: ObjectStore; chunksRead: () => number } {
    let read = 0
    const objects = new MemoryObjects()
    void objects.put('m.json', bytes)
    const store = Object.assign(objects, {
      async getStream(key: string): Promise<AsyncIterable<Uint8Array> | undefined> {
        if (key !== 'm.json') return undefined
        return (async function* () {
          for (let at = 0; at < bytes.byteLength; at += size) {
            read++
            yield bytes.subarray(at, at + size)
          }
        })()
      },
    })
    return { objects: store, chunksRead: () => read }
  }
  const r = { name: 's', metadataKey: 'm.json' }
  const golden = JSON.parse(fixture('metadata-v1.json').toString()) as Record<string, unknown>

  it('reads only the first chunks of metadata that starts with its version', async () => {
    const { formatVersion, ...rest } = golden
    const bytes = Buffer.from(JSON.stringify({ formatVersion, ...rest, manifests: Array.from({ length: 500 }, (_, i) => `m${i}`) }))
    const ok = chunkedStore(bytes, 10)
    await readMetadataVersion(ok.objects, r)
    expect(ok.chunksRead()).toBe(7)
    const newer = chunkedStore(Buffer.from(bytes.toString().replace('"formatVersion":1', '"formatVersion":2')), 10)
    await expect(readMetadataVersion(newer.objects, r)).rejects.toMatchObject({ code: 'UNSUPPORTED_VERSION' })
    expect(newer.chunksRead()).toBe(7)
  })

  it('decodes metadata in any other order whole, and refuses a missing or damaged one', async () => {
    const { formatVersion, ...rest } = golden
    const other = Buffer.from(JSON.stringify({ ...rest, formatVersion }))
    const whole = chunkedStore(other, 10)
    await readMetadataVersion(whole.objects, r)
    expect(whole.chunksRead()).toBe(Math.ceil(other.byteLength / 10))
    await expect(readMetadataVersion(chunkedStore(Buffer.from(JSON.stringify({ ...rest, formatVersion: 2 })), 10).objects, r)).rejects.toMatchObject({ code: 'UNSUPPORTED_VERSION' })
    await expect(readMetadataVersion(chunkedStore(Buffer.from('{"formatVersion":1'), 10).objects, r)).rejects.toMatchObject({ code: 'CORRUPT' })
    await expect(readMetadataVersion(chunkedStore(other, 10).objects, { name: 's', metadataKey: 'gone.json' })).rejects.toMatchObject({ code: 'CORRUPT' })
  })
})
