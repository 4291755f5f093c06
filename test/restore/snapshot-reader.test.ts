import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import { keys } from '../../src/meta/keys.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { MetaStoreCapabilities } from '../../src/meta/meta-store.js'
import type { TaskRecord } from '../../src/restore/job-state.js'
import { readCommitted, readSnapshotView, SnapshotView } from '../../src/restore/snapshot-reader.js'
import { JobSource } from '../../src/restore/snapshot-source.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { contentHash, encodeList, ListManifests, ListManifestsParser, SnapshotList, type ListEntry, type SnapshotListHeader } from '../../src/snapshot/snapshot-list.js'
import type { SnapshotRecord } from '../../src/snapshot/snapshot-record.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { expectSameFiles, flushedSegment, metaEntries, openManager, seedCollection } from './helpers.js'

/**
 * Restore reads a snapshot's small record and its list object (segments kept as compact
 * columns, handed out a batch at a time); the metadata JSON only for its format version.
 */

function header(n: number, o: Partial<SnapshotListHeader> = {}): SnapshotListHeader {
  return {
    vecsnapList: 1,
    snapshotId: 7,
    snapshotName: 'snap',
    collection: {
      id: 3,
      name: 'docs',
      schema: { fields: [{ fieldId: 100, name: 'pk', dataType: 'Int64', isPrimaryKey: true }] },
      shardsNum: 2,
      channels: ['c_0', 'c_1'],
      partitions: [{ id: 4, name: '_default' }],
      properties: { 'a]b': '{"x":[1,2]}\n' },
      createdAt: 1,
    },
    indexes: [],
    segmentCount: n,
    rowCount: 10 * n,
    sizeBytes: 100 * n,
    ...o,
  }
}

function entries(n: number): ListEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    segmentId: 1000 + i,
    manifestOwner: i % 2 === 0 ? 7 : 5,
    manifestHash: `h${i}`.padEnd(22, 'A'),
    manifestSize: 1600 + i,
    rows: 10,
    bytes: 100,
    builds: i % 3 === 0 ? [] : [2000 + i, 3000 + i],
  }))
}

function messageOf(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return err instanceof SnapshotError ? `${err.code}: ${err.message}` : `not a SnapshotError: ${String(err)}`
  }
}

/** A list's bytes pushed `size` bytes at a time. */
function decodeInChunks(bytes: Buffer, size: number): ListManifests {
  const parser = new ListManifestsParser('l')
  for (let at = 0; at < bytes.byteLength; at += size) parser.push(bytes.subarray(at, at + size))
  return parser.end()
}

async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn()
    return undefined
  } catch (err) {
    return err instanceof SnapshotError ? err.code : `not a SnapshotError: ${String(err)}`
  }
}

describe('SnapshotList', () => {
  it('decodes what encodeList wrote, and a view hands its segments out a batch at a time', () => {
    const { bytes, hash } = encodeList(header(25), entries(25))
    expect(hash).toBe(contentHash(bytes))
    const list = new SnapshotList(bytes, 'l')
    expect(list.header).toEqual(header(25))
    for (let i = 0; i < 25; i++) expect(list.entry(i)).toEqual(entries(25)[i])
    expect(list.manifestKey(1)).toBe('snapshots/3/manifests/5/1001.avro')
    const manifests = ListManifests.decode(bytes, 'l')
    expect(manifests).toMatchObject({ key: 'l', header: header(25), count: 25, segmentIds: list.segmentIds, owners: list.owners })
    expect(manifests.manifestKey(1)).toBe('snapshots/3/manifests/5/1001.avro')
    const view = new SnapshotView(manifests)
    expect(view).toMatchObject({ segmentCount: 25, snapshot: { id: 7, name: 'snap' }, indexes: [] })
    const it = view.segments()
    const batches = [it.next(10), it.next(10), it.next(10), it.next(10)]
    expect(batches.map((b) => b.segmentIds.length)).toEqual([10, 10, 5, 0])
    expect(batches.flatMap((b) => b.segmentIds)).toEqual(entries(25).map((e) => e.segmentId))
    expect(batches[0].owners).toEqual(entries(25).slice(0, 10).map((e) => e.manifestOwner))
  })

  it('refuses damaged lists with CORRUPT and a newer format with UNSUPPORTED_VERSION', async () => {
    const good = Buffer.from(encodeList(header(3), entries(3)).bytes).toString()
    const cases: [string, string][] = [
      ['no newline', '{"vecsnapList":1}'],
      ['header not JSON', '{"vecsnapList":1,\n'],
      ['truncated', good.slice(0, good.length - 10)],
      ['trailing', good + 'x\n'],
      ['bad entry', good.replace(/\n1001 /, '\nx1001 ')],
      ['too few', good.replace(/"segmentCount":3/, '"segmentCount":4')],
      ['too many fields', good.replace(/(\n1001 [^\n]*)\n/, '$1 5\n')],
      ['too few fields', good.replace(/\n(1001 \d+) \S+ /, '\n$1 ')],
      ['empty number', good.replace(/\n1001 \d+ /, '\n1001  ')],
      ['sign', good.replace(/\n1001 /, '\n+1001 ')],
    ]
    for (const [why, text] of cases) {
      expect(await codeOf(() => new SnapshotList(Buffer.from(text), 'l')), why).toBe('CORRUPT')
      const message = messageOf(() => new SnapshotList(Buffer.from(text), 'l'))
      expect(messageOf(() => ListManifests.decode(Buffer.from(text), 'l')), why).toBe(message)
      // Read a chunk at a time, lines cut anywhere: the same error.
      for (const size of [1, 3, 64]) expect(messageOf(() => decodeInChunks(Buffer.from(text), size)), `${why}, chunks of ${size}`).toBe(message)
    }
    for (const size of [1, 7, 100]) expect(decodeInChunks(Buffer.from(good), size)).toEqual(ListManifests.decode(Buffer.from(good), 'l'))
    const newer = Buffer.from(good.replace('"vecsnapList":1', '"vecsnapList":2'))
    expect(await codeOf(() => new SnapshotList(newer, 'l'))).toBe('UNSUPPORTED_VERSION')
    expect(await codeOf(() => ListManifests.decode(newer, 'l'))).toBe('UNSUPPORTED_VERSION')
  })

  it('reads fields as split and Number read them: long numbers, odd build fields, non-ASCII hashes', () => {
    const lines = ['123456789012345678 7 hé 1 2 3 -', '0042 5 x 10 0 0 1,,2', '9 5 y 1 1 1 ', '8 5 z 1 1 1 7,x']
    const list = new SnapshotList(Buffer.from(`${JSON.stringify(header(4))}\n${lines.join('\n')}\n`), 'l')
    expect([...list.segmentIds]).toEqual([Number('123456789012345678'), 42, 9, 8])
    expect(list.hashes).toEqual(['hé', 'x', 'y', 'z'])
    expect([0, 1, 2, 3].map((i) => list.entry(i).builds)).toEqual([[], [1, 0, 2], [0], [7, NaN]])
  })
})

describe('readCommitted and readSnapshotView', () => {
  it('NOT_FOUND, FAILED_PRECONDITION and INVALID_ARGUMENT as the snapshot store reports them; the list checked by hash; the metadata by version', async () => {
    const meta = new MemoryMetaStore()
    await meta.open()
    const dir = await mkdtemp(join(tmpdir(), 'vecsnap-reader-'))
    const objects = new FsObjectStore({ root: dir, fsync: false })
    try {
      const list = encodeList(header(2), entries(2))
      await objects.put('snapshots/3/lists/7.txt', list.bytes)
      await objects.put('snapshots/3/metadata/7.json', Buffer.from(JSON.stringify({ formatVersion: 1, snapshot: {} })))
      const record = {
        id: 7, name: 's', state: 'committed', metadataKey: 'snapshots/3/metadata/7.json', metadataSize: 0,
        list: { key: 'snapshots/3/lists/7.txt', hash: list.hash, size: list.bytes.byteLength },
      }
      await meta.batch([
        { type: 'put', key: keys.snapshotName('s'), value: '7' },
        { type: 'put', key: keys.snapshot(7), value: JSON.stringify(record) },
        { type: 'put', key: keys.snapshotName('p'), value: '10' },
        { type: 'put', key: keys.snapshot(10), value: JSON.stringify({ ...record, id: 10, name: 'p', state: 'pending' }) },
      ])
      const r: SnapshotRecord = await readCommitted(meta, 's')
      expect(r).toEqual(record)
      expect((await readSnapshotView(objects, r)).segmentCount).toBe(2)
      expect(await codeOf(() => readCommitted(meta, 'nope'))).toBe('NOT_FOUND')
      expect(await codeOf(() => readCommitted(meta, 'p'))).toBe('FAILED_PRECONDITION')
      expect(await codeOf(() => readCommitted(meta, '../x'))).toBe('INVALID_ARGUMENT')
      // Another list than the record names.
      expect(await codeOf(() => readSnapshotView(objects, { ...r, list: { ...record.list, hash: contentHash(Buffer.from('x')) } }))).toBe('CORRUPT')
      // A newer metadata format, written as this build writes (version first) or in any other order.
      await objects.put(r.metadataKey, Buffer.from(JSON.stringify({ formatVersion: 2, snapshot: {} })))
      expect(await codeOf(() => readSnapshotView(objects, r))).toBe('UNSUPPORTED_VERSION')
      await objects.put(r.metadataKey, Buffer.from(JSON.stringify({ snapshot: {}, formatVersion: 2 })))
      expect(await codeOf(() => readSnapshotView(objects, r))).toBe('UNSUPPORTED_VERSION')
      await objects.delete([r.metadataKey])
      expect(await codeOf(() => readSnapshotView(objects, r))).toBe('CORRUPT')
    } finally {
      await meta.close()
      await rm(dir, { recursive: true, force: true })
    }
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
    const objects = new FsObjectStore({ root: join(dir, 'objects'), fsync: false })
    // 56 tasks per transaction (chunkSize), 2 segments per task: 123 segments → 62 tasks, the last of one segment.
    manager = await openManager(meta, objects, { maxSegmentsPerCopyTask: 2 })
    const coll = await seedCollection(manager, 'docs')
    const segs = []
    for (let i = 0; i < 123; i++) segs.push(await flushedSegment(manager, objects, coll, { indexes: i % 10 === 0, numRows: i + 1 }))
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'snap' })
    const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'copy' })
    expect(await manager.waitForRestore(jobId)).toMatchObject({ state: 'completed', copiedSegments: 123, totalSegments: 123 })
    const tasks = (await metaEntries(meta, keys.restoreTaskPrefix(jobId))).map(([, v]) => JSON.parse(v) as TaskRecord)
    expect(tasks.map((t) => t.taskId)).toEqual(Array.from({ length: 62 }, (_, i) => i))
    expect(tasks.flatMap((t) => t.segmentIds)).toEqual(segs.map((s) => s.id))
    await expectSameFiles(objects, segs, await manager.catalog.listSegments('copy'))

    // A task names its manifests by segment ID and owner; a task without owners (the
    // shape before owners, never released) or with too few is CORRUPT.
    const view = await readSnapshotView(objects, await readCommitted(meta, 'snap'))
    const source = new JobSource(objects, view)
    const list = ListManifests.decode((await objects.get(view.key)) as Uint8Array, view.key)
    const task = tasks[1]
    const fromOwners = await source.segments(task)
    expect(fromOwners.map((s) => s.id)).toEqual(task.segmentIds)
    expect(fromOwners.map((s) => s.id)).toEqual([list.segmentIds[task.first], list.segmentIds[task.first + 1]])
    const legacy = { ...task, owners: undefined, manifests: [list.manifestKey(task.first), list.manifestKey(task.first + 1)] } as unknown as TaskRecord
    expect(await codeOf(() => source.segments(legacy))).toBe('CORRUPT')
    expect(await codeOf(() => source.segments({ ...task, owners: task.owners.slice(1) }))).toBe('CORRUPT')
  }, 60_000)
})
