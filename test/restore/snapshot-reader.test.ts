import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import { keys } from '../../src/meta/keys.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { MetaStoreCapabilities } from '../../src/meta/meta-store.js'
import { LazyJson, LazyJsonError } from '../../src/restore/lazy-json.js'
import { MetadataView, readCommittedHead } from '../../src/restore/snapshot-reader.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { decodeMetadata, encodeMetadata, type SnapshotMetadata } from '../../src/snapshot/metadata-json.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { expectSameFiles, flushedSegment, metaEntries, openManager, seedCollection } from './helpers.js'

/**
 * Restore reads snapshot records and metadata without parsing their per-segment lists
 * whole: the lazy JSON scanner, the metadata view (same checks as `decodeMetadata`) and
 * the record head, and a restore whose tasks are written over several transactions.
 */

function metadata(n: number, o: Partial<SnapshotMetadata> = {}): SnapshotMetadata {
  return {
    formatVersion: 1,
    snapshot: { id: 7, name: 'snap', description: 'd "quoted" \\ é', collectionId: 3, collectionName: 'docs', createdAt: 1, segmentCount: n, rowCount: 10 * n, sizeBytes: 100 * n },
    collection: {
      id: 3,
      name: 'docs',
      schema: { fields: [{ fieldId: 100, name: 'pk', dataType: 'Int64', isPrimaryKey: true }] },
      shardsNum: 2,
      channels: ['c_0', 'c_1'],
      partitions: [{ id: 4, name: '_default' }],
      properties: { 'a]b': '{"x":[1,2]}' },
      createdAt: 1,
    },
    indexes: [],
    segmentIds: Array.from({ length: n }, (_, i) => 1000 + i),
    // Keys with characters the scanner must step over: quotes, backslashes, brackets, non-ASCII.
    manifests: Array.from({ length: n }, (_, i) => `snapshots/3/manifests/7/${1000 + i}${i % 3 === 0 ? '-"]\\,é' : ''}.avro`),
    ...o,
  }
}

function bytes(value: unknown): Uint8Array {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))
}

async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn()
    return undefined
  } catch (err) {
    return err instanceof SnapshotError ? err.code : `not a SnapshotError: ${String(err)}`
  }
}

describe('LazyJson', () => {
  const text = ' { "a" : [1, "x\\"]", {"b": [2]}] , "s": "q\\\\", "n": -1.5e3, "o": {"k": null}, "a": true } '
  for (const [kind, source] of [['string', text], ['bytes', Buffer.from(text)]] as const) {
    it(`finds members and elements of ${kind} without parsing the rest`, () => {
      const json = new LazyJson(source)
      const members = json.members(json.root)
      expect([...members.keys()]).toEqual(['a', 's', 'n', 'o'])
      // A repeated key keeps the last value, as JSON.parse does.
      expect(json.parse(members.get('a') as never)).toBe(true)
      expect(json.parse(members.get('s') as never)).toBe('q\\')
      expect(json.parse(members.get('n') as never)).toBe(-1500)
      expect(json.parse(members.get('o') as never)).toEqual({ k: null })
      const list = new LazyJson('[1, "x\\"]", {"b": [2]}, []]')
      expect([...list.elements(list.root)].map((s) => list.parse(s))).toEqual([1, 'x"]', { b: [2] }, []])
      const empty = new LazyJson('[ ]')
      expect([...empty.elements(empty.root)]).toEqual([])
    })
  }

  it('rejects malformed text with LazyJsonError', () => {
    for (const bad of ['', '{"a": 1', '{"a" 1}', '{"a": 1,}', '[1 2]', '{"a": "x}', '{} x', '{"a": [1, 2}']) {
      expect(() => {
        const json = new LazyJson(bad)
        const root = json.root
        if (json.is(root, 'object')) for (const span of json.members(root).values()) json.parse(span)
        else for (const span of json.elements(root)) json.parse(span)
      }, bad).toThrow(LazyJsonError)
    }
  })
})

describe('MetadataView', () => {
  it('reads what decodeMetadata reads, the segment list a batch at a time', () => {
    const m = metadata(25)
    const view = new MetadataView(encodeMetadata(m), 'k')
    const decoded = decodeMetadata(encodeMetadata(m), 'k')
    expect(view.snapshot).toEqual(decoded.snapshot)
    expect(view.collection).toEqual(decoded.collection)
    expect(view.indexes).toEqual(decoded.indexes)
    expect(view.segmentCount).toBe(25)
    const cursor = view.segments()
    const batches = [cursor.next(10), cursor.next(10), cursor.next(10), cursor.next(10)]
    expect(batches.map((b) => b.segmentIds.length)).toEqual([10, 10, 5, 0])
    expect(batches.flatMap((b) => b.segmentIds)).toEqual(decoded.segmentIds)
    expect(batches.flatMap((b) => b.manifests)).toEqual(decoded.manifests)
  })

  it('fails as decodeMetadata does: UNSUPPORTED_VERSION, CORRUPT', async () => {
    const good = metadata(3)
    const cases: [string, Uint8Array][] = [
      ['future version', bytes({ ...good, formatVersion: 2 })],
      ['not JSON', bytes('{"formatVersion": 1, ')],
      ['not an object', bytes('[1]')],
      ['no snapshot part', bytes({ ...good, snapshot: 'x' })],
      ['no collection part', bytes({ ...good, collection: { ...good.collection, partitions: undefined } })],
      ['no indexes', bytes({ ...good, indexes: undefined })],
      ['manifest that is not a string', bytes({ ...good, manifests: ['a', 2, 'c'] })],
      ['lists of different lengths', bytes({ ...good, segmentIds: [1, 2] })],
    ]
    for (const [why, b] of cases) {
      const expected = await codeOf(() => decodeMetadata(b, 'k'))
      expect(expected, why).toMatch(/^(CORRUPT|UNSUPPORTED_VERSION)$/)
      expect(await codeOf(() => new MetadataView(b, 'k')), why).toBe(expected)
    }
    // An entry that does not parse surfaces when its batch is read.
    const view = new MetadataView(bytes('{"formatVersion":1,"snapshot":{"id":1,"name":"s"},"collection":{"schema":{"fields":[]},"partitions":[]},"indexes":[],"segmentIds":[1,x],"manifests":["a","b"]}'), 'k')
    expect(await codeOf(() => view.segments().next(2))).toBe('CORRUPT')
  })
})

describe('readCommittedHead', () => {
  it('reads a record without its lists; NOT_FOUND, FAILED_PRECONDITION and CORRUPT as the snapshot store reports them', async () => {
    const meta = new MemoryMetaStore()
    await meta.open()
    const record = { id: 9, name: 's', state: 'committed', metadataKey: 'm.json', segmentIds: [1, 2], manifestKeys: ['a', 'b'], rowCount: 4 }
    await meta.batch([
      { type: 'put', key: keys.snapshotName('s'), value: '9' },
      { type: 'put', key: keys.snapshot(9), value: JSON.stringify(record) },
      { type: 'put', key: keys.snapshotName('p'), value: '10' },
      { type: 'put', key: keys.snapshot(10), value: JSON.stringify({ ...record, id: 10, name: 'p', state: 'pending' }) },
      { type: 'put', key: keys.snapshotName('bad'), value: '11' },
      { type: 'put', key: keys.snapshot(11), value: '{"id": 11, "state": "committed", "metadataKey": "m", "segmentIds": [1,' },
    ])
    expect(await readCommittedHead(meta, 's')).toEqual({ id: 9, name: 's', state: 'committed', metadataKey: 'm.json', rowCount: 4 })
    expect(await codeOf(() => readCommittedHead(meta, 'nope'))).toBe('NOT_FOUND')
    expect(await codeOf(() => readCommittedHead(meta, 'p'))).toBe('FAILED_PRECONDITION')
    expect(await codeOf(() => readCommittedHead(meta, 'bad'))).toBe('CORRUPT')
    expect(await codeOf(() => readCommittedHead(meta, '../x'))).toBe('INVALID_ARGUMENT')
    await meta.close()
  })
})

/** A MemoryMetaStore that takes few operations per batch, so restore writes its tasks over several transactions. */
class SmallBatchMetaStore extends MemoryMetaStore {
  override readonly capabilities: MetaStoreCapabilities = Object.freeze({ sharedConditionalBatch: false, maxBatchOps: 64 })
}

describe('restore of a snapshot whose tasks take several transactions', () => {
  let dir: string | undefined
  let manager: SnapshotManager | undefined

  afterEach(async () => {
    await manager?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    manager = undefined
    dir = undefined
  })

  it('writes every task with its own segments and restores them all', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vecsnap-tasks-'))
    const meta = new SmallBatchMetaStore()
    const objects = new FsObjectStore({ root: join(dir, 'objects') })
    // 56 tasks per transaction (chunkSize), 2 segments per task: 123 segments → 62 tasks, the last of one segment.
    manager = await openManager(meta, objects, { maxSegmentsPerCopyTask: 2 })
    const coll = await seedCollection(manager, 'docs')
    const segs = []
    for (let i = 0; i < 123; i++) segs.push(await flushedSegment(manager, objects, coll, { indexes: i % 10 === 0, numRows: i + 1 }))
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'snap' })
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'copy' })
    expect(await manager.waitForRestore(jobId)).toMatchObject({ state: 'completed', copiedSegments: 123, totalSegments: 123 })
    const tasks = (await metaEntries(meta, keys.restoreTaskPrefix(jobId))).map(([, v]) => JSON.parse(v) as { taskId: number; first: number; segmentIds: number[] })
    expect(tasks.map((t) => t.taskId)).toEqual(Array.from({ length: 62 }, (_, i) => i))
    expect(tasks.flatMap((t) => t.segmentIds)).toEqual(segs.map((s) => s.id))
    await expectSameFiles(objects, segs, await manager.catalog.listSegments('copy'))
  }, 60_000)
})
