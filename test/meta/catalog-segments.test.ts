import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Catalog } from '../../src/meta/catalog.js'
import type { CollectionInfo, FieldBinlog, FlushSegmentRequest, SegmentInfo } from '../../src/catalog-types.js'
import { keys } from '../../src/meta/keys.js'
import { segmentBytes } from '../../src/meta/segment-files.js'
import { assembleManifest, decodeManifest, encodeManifest } from '../../src/format/manifest-codec.js'
import { captureSegment, readCapture, storedCapture } from '../../src/format/segment-capture.js'
import {
  backends,
  Clock,
  code,
  CountingStore,
  dump,
  file,
  flushData,
  flushed,
  rejectsCleanly,
  seedDocs,
  type TestStore,
} from './catalog-env.js'

describe.each(backends)('Catalog segments on $name', (backend) => {
  let store: TestStore
  let counting: CountingStore
  let catalog: Catalog
  let clock: Clock
  let coll: CollectionInfo

  beforeEach(async () => {
    store = await backend.make()
    clock = new Clock()
    counting = new CountingStore(store.meta)
    catalog = Catalog.over(counting, { now: clock.now })
    coll = await seedDocs(catalog, 'docs', { shardsNum: 2, partitionNames: ['p1'] })
  })

  afterEach(async () => {
    await store.dispose()
  })

  /** Runs `fn` and asserts it wrote exactly one batch. */
  async function oneBatch<T>(fn: () => Promise<T>): Promise<T> {
    const before = counting.batches
    const result = await fn()
    expect(counting.batches).toBe(before + 1)
    return result
  }

  describe('allocSegment', () => {
    it('allocates a growing, empty segment in _default, channels round-robin by ID', async () => {
      const a = await oneBatch(() => catalog.allocSegment({ collection: 'docs' }))
      expect(a).toEqual({
        id: expect.any(Number),
        collectionId: coll.id,
        partitionId: coll.partitions[0].id,
        channel: coll.channels[a.id % 2],
        state: 'growing',
        level: 'L1',
        numRows: 0,
        binlogs: [],
        statslogs: [],
        deltalogs: [],
        bm25logs: [],
        indexes: [],
        textIndexes: [],
        jsonKeyIndexes: [],
        createdAt: clock.t,
      })
      const b = await catalog.allocSegment({ collection: 'docs' })
      expect(b.id).toBe(a.id + 1)
      expect(b.channel).not.toBe(a.channel)
      expect(await catalog.getSegment(a.id)).toEqual(a)
    })

    it('honours partition, channel and level', async () => {
      const s = await catalog.allocSegment({ collection: 'docs', partition: 'p1', channel: coll.channels[1], level: 'L0' })
      expect(s).toMatchObject({ partitionId: coll.partitions[1].id, channel: coll.channels[1], level: 'L0' })
    })

    it('rejects bad requests with the right code, nothing written', async () => {
      await rejectsCleanly(store.meta, () => catalog.allocSegment({ collection: 'nope' }), 'NOT_FOUND')
      await rejectsCleanly(store.meta, () => catalog.allocSegment({ collection: 'docs', partition: 'p9' }), 'NOT_FOUND')
      await rejectsCleanly(store.meta, () => catalog.allocSegment({ collection: 'docs', channel: 'other-channel' }), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.allocSegment({ collection: 'docs', level: 'L3' as never }), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.allocSegment({ collection: 'a-b' }), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.allocSegment({ collection: 5 as never }), TypeError)
      await rejectsCleanly(store.meta, () => catalog.allocSegment({ collection: 'docs', channel: 0 as never }), TypeError)
      await rejectsCleanly(store.meta, () => catalog.allocSegment('docs' as never), TypeError)
    })
  })

  describe('flushSegment', () => {
    it('records rows and files and flushes; only known file properties are kept', async () => {
      const seg = await catalog.allocSegment({ collection: 'docs' })
      const data = flushData('a', 42)
      const request: FlushSegmentRequest = {
        ...data,
        deltalogs: [{ fieldId: 100, files: [file('a/delta', 3)] }],
        bm25logs: [{ fieldId: 102, files: [file('a/bm25', 4)] }],
      }
      ;(request.binlogs[0].files[0] as unknown as Record<string, unknown>).junk = 'x'
      const out = await oneBatch(() => catalog.flushSegment(seg.id, request))
      expect(out).toEqual({ ...seg, state: 'flushed', numRows: 42, binlogs: flushData('a', 42).binlogs, statslogs: data.statslogs, deltalogs: request.deltalogs, bm25logs: request.bm25logs })
      expect(await catalog.getSegment(seg.id)).toEqual(out)
      expect(JSON.stringify(await catalog.getSegment(seg.id))).not.toContain('junk')
    })

    it('accepts the system fields 0 and 1 in binlogs and any field in deltalogs; missing lists are empty', async () => {
      const seg = await catalog.allocSegment({ collection: 'docs' })
      const out = await catalog.flushSegment(seg.id, {
        numRows: 1,
        binlogs: [{ fieldId: 0, files: [file('rowid')] }, { fieldId: 1, files: [file('ts')] }],
        deltalogs: [{ fieldId: 0, files: [file('d')] }],
      })
      expect(out).toMatchObject({ statslogs: [], bm25logs: [], deltalogs: [{ fieldId: 0, files: [file('d')] }] })
    })

    it('only flushes growing segments (FAILED_PRECONDITION), NOT_FOUND for unknown ones', async () => {
      const seg = await flushed(catalog, 'docs', 'a')
      await rejectsCleanly(store.meta, () => catalog.flushSegment(seg.id, flushData('b')), 'FAILED_PRECONDITION')
      await catalog.dropSegment(seg.id)
      await rejectsCleanly(store.meta, () => catalog.flushSegment(seg.id, flushData('b')), 'FAILED_PRECONDITION')
      await rejectsCleanly(store.meta, () => catalog.flushSegment(999, flushData('b')), 'NOT_FOUND')
      await expect(catalog.flushSegment(999, flushData('b'))).rejects.toThrow('segment not found: 999')
    })

    const badFiles: [string, FieldBinlog[], string | typeof TypeError][] = [
      ['an unknown field', [{ fieldId: 150, files: [file('x')] }], 'INVALID_ARGUMENT'],
      ['a field listed twice', [{ fieldId: 100, files: [file('x')] }, { fieldId: 100, files: [file('y')] }], 'INVALID_ARGUMENT'],
      ['a logId twice in one field', [{ fieldId: 100, files: [file('x', 1, { logId: 7 }), file('y', 1, { logId: 7 })] }], 'INVALID_ARGUMENT'],
      ['a key twice', [{ fieldId: 100, files: [file('x')] }, { fieldId: 101, files: [file('x')] }], 'INVALID_ARGUMENT'],
      ['a negative size', [{ fieldId: 100, files: [file('x', -1)] }], 'INVALID_ARGUMENT'],
      ['a fractional size', [{ fieldId: 100, files: [file('x', 1.5)] }], 'INVALID_ARGUMENT'],
      ['a NaN size', [{ fieldId: 100, files: [file('x', NaN)] }], 'INVALID_ARGUMENT'],
      ['a negative logId', [{ fieldId: 100, files: [file('x', 1, { logId: -1 })] }], 'INVALID_ARGUMENT'],
      ['an empty checksum', [{ fieldId: 100, files: [file('x', 1, { checksum: '' })] }], 'INVALID_ARGUMENT'],
      ['a string size', [{ fieldId: 100, files: [{ key: 'files/x', size: '1' as never }] }], TypeError],
      ['a numeric key', [{ fieldId: 100, files: [{ key: 5 as never, size: 1 }] }], TypeError],
      ['a numeric checksum', [{ fieldId: 100, files: [file('x', 1, { checksum: 5 as never })] }], TypeError],
      ['files not an array', [{ fieldId: 100, files: file('x') as never }], TypeError],
      ['a string fieldId', [{ fieldId: '100' as never, files: [file('x')] }], TypeError],
    ]
    it.each(badFiles)('rejects binlogs with %s, nothing written', async (_, binlogs, expected) => {
      const seg = await catalog.allocSegment({ collection: 'docs' })
      await rejectsCleanly(store.meta, () => catalog.flushSegment(seg.id, { numRows: 1, binlogs }), expected)
    })

    it.each(['', '/abs', 'a//b', 'a/../b', '../up', 'a/./b', './a', 'trailing/', 'back\\slash', 'nul\u0000', 'snapshots/1/metadata/2.json'])(
      'rejects the object key %j (INVALID_ARGUMENT, nothing written)',
      async (key) => {
        const seg = await catalog.allocSegment({ collection: 'docs' })
        await rejectsCleanly(store.meta, () => catalog.flushSegment(seg.id, { numRows: 1, binlogs: [{ fieldId: 100, files: [{ key, size: 1 }] }] }), 'INVALID_ARGUMENT')
      },
    )

    it('rejects statslogs and bm25 logs of non-schema fields (even system ones)', async () => {
      const seg = await catalog.allocSegment({ collection: 'docs' })
      await rejectsCleanly(store.meta, () => catalog.flushSegment(seg.id, { numRows: 1, binlogs: [], statslogs: [{ fieldId: 0, files: [file('s')] }] }), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.flushSegment(seg.id, { numRows: 1, binlogs: [], bm25logs: [{ fieldId: 99, files: [file('s')] }] }), 'INVALID_ARGUMENT')
    })

    it.each([
      [0, 'INVALID_ARGUMENT'],
      [-1, 'INVALID_ARGUMENT'],
      [1.5, 'INVALID_ARGUMENT'],
      [Number.MAX_SAFE_INTEGER + 1, 'INVALID_ARGUMENT'],
      ['1', TypeError],
      [null, TypeError],
    ] as const)('rejects the segment ID %j', async (id, expected) => {
      await rejectsCleanly(store.meta, () => catalog.flushSegment(id as never, flushData('x')), expected)
      await rejectsCleanly(store.meta, () => catalog.getSegment(id as never), expected)
      await rejectsCleanly(store.meta, () => catalog.dropSegment(id as never), expected)
    })

    it('rejects a bad numRows and a non-object request', async () => {
      const seg = await catalog.allocSegment({ collection: 'docs' })
      await rejectsCleanly(store.meta, () => catalog.flushSegment(seg.id, { ...flushData('x'), numRows: -1 }), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.flushSegment(seg.id, { ...flushData('x'), numRows: '5' as never }), TypeError)
      await rejectsCleanly(store.meta, () => catalog.flushSegment(seg.id, null as never), TypeError)
    })
  })

  describe('addDeltalogs', () => {
    it('appends to a flushed segment, merging a field already listed', async () => {
      const seg = await catalog.allocSegment({ collection: 'docs' })
      await catalog.flushSegment(seg.id, { ...flushData('a'), deltalogs: [{ fieldId: 100, files: [file('d1', 1, { logId: 10 })] }] })
      const out = await oneBatch(() =>
        catalog.addDeltalogs(seg.id, [
          { fieldId: 100, files: [file('d2', 2, { logId: 11 })] },
          { fieldId: 0, files: [file('d3', 3)] },
        ]),
      )
      expect(out.deltalogs).toEqual([
        { fieldId: 100, files: [file('d1', 1, { logId: 10 }), file('d2', 2, { logId: 11 })] },
        { fieldId: 0, files: [file('d3', 3)] },
      ])
      expect(await catalog.getSegment(seg.id)).toEqual(out)
    })

    it('rejects non-flushed segments, reused keys and logIds, nothing written', async () => {
      const growing = await catalog.allocSegment({ collection: 'docs' })
      await rejectsCleanly(store.meta, () => catalog.addDeltalogs(growing.id, [{ fieldId: 100, files: [file('d')] }]), 'FAILED_PRECONDITION')
      const seg = await catalog.allocSegment({ collection: 'docs' })
      await catalog.flushSegment(seg.id, { ...flushData('a'), deltalogs: [{ fieldId: 100, files: [file('d1', 1, { logId: 10 })] }] })
      await rejectsCleanly(store.meta, () => catalog.addDeltalogs(seg.id, [{ fieldId: 100, files: [file('d1')] }]), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.addDeltalogs(seg.id, [{ fieldId: 100, files: [file('a/pk/1')] }]), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.addDeltalogs(seg.id, [{ fieldId: 100, files: [file('d9', 1, { logId: 10 })] }]), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.addDeltalogs(seg.id, { fieldId: 100, files: [] } as never), TypeError)
      await rejectsCleanly(store.meta, () => catalog.addDeltalogs(12345, []), 'NOT_FOUND')
    })
  })

  describe('addSegmentIndex / addTextIndex / addJsonKeyIndex', () => {
    let seg: SegmentInfo
    beforeEach(async () => {
      seg = await flushed(catalog, 'docs', 'a')
    })

    it('records a build with a new build ID; a rebuild replaces it and records the old build as dropped', async () => {
      const [vecIdx] = await catalog.listIndexes('docs')
      const first = await oneBatch(() => catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file('ix1/HNSW_0', 100), file('ix1/HNSW_1', 20)] }))
      expect(first).toEqual({ indexId: vecIdx.id, buildId: seg.id + 1, files: [file('ix1/HNSW_0', 100), file('ix1/HNSW_1', 20)] })
      expect((await catalog.getSegment(seg.id)).indexes).toEqual([first])
      const second = await oneBatch(() => catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file('ix2/HNSW_0', 90)] }))
      expect(second.buildId).toBe(first.buildId + 1)
      expect((await catalog.getSegment(seg.id)).indexes).toEqual([second])
      expect(await catalog.listDroppedBuilds()).toEqual([
        { buildId: first.buildId, kind: 'index', collectionId: coll.id, partitionId: seg.partitionId, segmentId: seg.id, indexId: vecIdx.id, files: first.files, droppedAt: clock.t },
      ])
    })

    it('text and JSON-key builds: per field, replaced and recorded the same way', async () => {
      const t1 = await catalog.addTextIndex(seg.id, { fieldId: 102, files: [file('text1/index')] })
      const j1 = await catalog.addJsonKeyIndex(seg.id, { fieldId: 103, files: [file('json1/keys')] })
      expect(t1).toEqual({ fieldId: 102, buildId: expect.any(Number), files: [file('text1/index')] })
      expect(j1.buildId).toBe(t1.buildId + 1)
      const t2 = await catalog.addTextIndex(seg.id, { fieldId: 102, files: [file('text2/index')] })
      const s = await catalog.getSegment(seg.id)
      expect(s.textIndexes).toEqual([t2])
      expect(s.jsonKeyIndexes).toEqual([j1])
      expect(await catalog.listDroppedBuilds()).toEqual([expect.objectContaining({ buildId: t1.buildId, kind: 'textIndex', fieldId: 102, files: t1.files })])
    })

    it('rejects bad builds with the right code, nothing written', async () => {
      const growing = await catalog.allocSegment({ collection: 'docs' })
      const ok = [file('ix/HNSW')]
      await rejectsCleanly(store.meta, () => catalog.addSegmentIndex(growing.id, { indexName: 'vec_idx', files: ok }), 'FAILED_PRECONDITION')
      await rejectsCleanly(store.meta, () => catalog.addSegmentIndex(seg.id, { indexName: 'nope', files: ok }), 'NOT_FOUND')
      await rejectsCleanly(store.meta, () => catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [] }), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file('x/HNSW'), file('y/HNSW')] }), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file(`a-${seg.id}/pk/1`)] }), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: 'x' as never }), TypeError)
      await rejectsCleanly(store.meta, () => catalog.addSegmentIndex(999, { indexName: 'vec_idx', files: ok }), 'NOT_FOUND')
      await catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: ok })
      // A rebuild must not reuse the old build's keys (GC deletes those).
      await rejectsCleanly(store.meta, () => catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: ok }), 'INVALID_ARGUMENT')
      await catalog.dropIndex('docs', 'vec_idx')
      await rejectsCleanly(store.meta, () => catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file('new/HNSW')] }), 'NOT_FOUND')
      await rejectsCleanly(store.meta, () => catalog.addTextIndex(seg.id, { fieldId: 150, files: [file('t')] }), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.addJsonKeyIndex(seg.id, { fieldId: '103' as never, files: [file('t')] }), TypeError)
      await rejectsCleanly(store.meta, () => catalog.addTextIndex(growing.id, { fieldId: 102, files: [file('t')] }), 'FAILED_PRECONDITION')
    })
  })

  describe('compact', () => {
    it('atomically drops the sources and adds the flushed result, in one batch', async () => {
      const a = await flushed(catalog, 'docs', 'a', { numRows: 10 })
      const b = await flushed(catalog, 'docs', 'b', { numRows: 20 })
      const c = await flushed(catalog, 'docs', 'c', { numRows: 5 })
      const result = await oneBatch(() =>
        catalog.compact({ collection: 'docs', sources: [b.id, a.id], result: flushData('ab', 28), level: 'L2' }),
      )
      const at = clock.t
      expect(result).toEqual({
        id: c.id + 1,
        collectionId: coll.id,
        partitionId: b.partitionId,
        channel: b.channel,
        state: 'flushed',
        level: 'L2',
        numRows: 28,
        binlogs: flushData('ab', 28).binlogs,
        statslogs: flushData('ab').statslogs,
        deltalogs: [],
        bm25logs: [],
        indexes: [],
        textIndexes: [],
        jsonKeyIndexes: [],
        createdAt: at,
      })
      expect(await catalog.getSegment(a.id)).toEqual({ ...a, state: 'dropped', droppedAt: at })
      expect(await catalog.getSegment(b.id)).toEqual({ ...b, state: 'dropped', droppedAt: at })
      expect((await catalog.listSegments('docs', { states: ['flushed'] })).map((s) => s.id)).toEqual([c.id, result.id])
      expect((await catalog.listSegments('docs')).map((s) => s.id)).toEqual([a.id, b.id, c.id, result.id])
    })

    it('rejects bad compactions with the right code, writing nothing', async () => {
      const a = await flushed(catalog, 'docs', 'a')
      const p1 = await flushed(catalog, 'docs', 'p', { partition: 'p1' })
      const growing = await catalog.allocSegment({ collection: 'docs' })
      const dropped = await flushed(catalog, 'docs', 'd')
      await catalog.dropSegment(dropped.id)
      await seedDocs(catalog, 'other')
      const foreign = await flushed(catalog, 'other', 'f')
      const result = flushData('r', 1)
      const compact = (sources: number[], r: typeof result = result) => () => catalog.compact({ collection: 'docs', sources, result: r })
      await rejectsCleanly(store.meta, compact([a.id, growing.id]), 'FAILED_PRECONDITION')
      await rejectsCleanly(store.meta, compact([a.id, dropped.id]), 'FAILED_PRECONDITION')
      await rejectsCleanly(store.meta, compact([a.id, p1.id]), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, compact([a.id, foreign.id]), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, compact([a.id, 9999]), 'NOT_FOUND')
      await rejectsCleanly(store.meta, compact([]), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, compact([a.id, a.id]), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, compact([a.id], { numRows: 1, binlogs: [{ fieldId: 150, files: [file('r')] }], statslogs: [] }), 'INVALID_ARGUMENT')
      // The result must write new files: a source's file would be deleted with the source.
      await rejectsCleanly(store.meta, compact([a.id], { numRows: 1, binlogs: [{ fieldId: 100, files: a.binlogs[0].files }], statslogs: [] }), 'INVALID_ARGUMENT')
      await rejectsCleanly(store.meta, () => catalog.compact({ collection: 'nope', sources: [a.id], result }), 'NOT_FOUND')
      await rejectsCleanly(store.meta, () => catalog.compact({ collection: 'docs', sources: String(a.id) as never, result }), TypeError)
      await rejectsCleanly(store.meta, () => catalog.compact({ collection: 'docs', sources: [a.id], result: null as never }), TypeError)
      await rejectsCleanly(store.meta, () => catalog.compact({ collection: 'docs', sources: [a.id], result, level: 'L9' as never }), 'INVALID_ARGUMENT')
    })
  })

  describe('dropSegment / getSegment / listSegments', () => {
    it('drops with droppedAt, idempotently', async () => {
      const a = await flushed(catalog, 'docs', 'a')
      await oneBatch(() => catalog.dropSegment(a.id))
      const at = clock.t
      expect(await catalog.getSegment(a.id)).toEqual({ ...a, state: 'dropped', droppedAt: at })
      const before = await dump(store.meta)
      await catalog.dropSegment(a.id)
      expect(await dump(store.meta)).toEqual(before)
      await rejectsCleanly(store.meta, () => catalog.dropSegment(4242), 'NOT_FOUND')
    })

    it('lists by ID with a states filter', async () => {
      const a = await flushed(catalog, 'docs', 'a')
      const g = await catalog.allocSegment({ collection: 'docs' })
      const d = await flushed(catalog, 'docs', 'd')
      await catalog.dropSegment(d.id)
      await seedDocs(catalog, 'other')
      await flushed(catalog, 'other', 'o')
      const ids = async (states?: SegmentInfo['state'][]) => (await catalog.listSegments('docs', { states })).map((s) => s.id)
      expect(await ids()).toEqual([a.id, g.id, d.id])
      expect(await ids(['growing', 'flushed'])).toEqual([a.id, g.id])
      expect(await ids(['dropped'])).toEqual([d.id])
      expect(await ids([])).toEqual([])
      await expect(catalog.listSegments('docs', { states: ['sealed' as never] })).rejects.toEqual(code('INVALID_ARGUMENT'))
      await expect(catalog.listSegments('docs', { states: 'flushed' as never })).rejects.toBeInstanceOf(TypeError)
      await expect(catalog.listSegments('nope')).rejects.toEqual(code('NOT_FOUND'))
    })

    it('keeps the collection → segment index in step with the records, with what a snapshot captures', async () => {
      const entry = async (id: number) => readCapture((await store.meta.get(keys.collectionSegment(coll.id, id))) as string)
      const g = await catalog.allocSegment({ collection: 'docs' })
      expect(await entry(g.id)).toEqual({ state: 'growing', partitionId: g.partitionId })
      const a = await flushed(catalog, 'docs', 'a')
      const ix = await catalog.addSegmentIndex(a.id, { indexName: 'vec_idx', files: [file('ix/HNSW_0', 100)] })
      const text = await catalog.addTextIndex(a.id, { fieldId: 102, files: [file('text/index', 30)] })
      const seg = await catalog.getSegment(a.id)
      const stored = (await entry(a.id))?.flushed
      expect(stored).toEqual({ rows: seg.numRows, bytes: segmentBytes(seg), builds: [ix.buildId, text.buildId], indexIds: [ix.indexId], manifest: expect.anything() })
      // The stored body becomes the manifest a snapshot of the segment writes.
      const manifest = assembleManifest(stored!.manifest)
      expect(manifest).toEqual(encodeManifest(captureSegment(seg)))
      expect(decodeManifest(manifest.bytes)).toEqual(captureSegment(seg))
      await catalog.dropSegment(a.id)
      expect(await entry(a.id)).toEqual({ state: 'dropped', partitionId: a.partitionId })
    })

    it('stores no capture for a segment the manifest encoder refuses (a create then reads its record)', async () => {
      const a = await flushed(catalog, 'docs', 'a')
      expect(readCapture(storedCapture(a))?.flushed).toBeDefined()
      // Avro longs stop short of Number.MAX_SAFE_INTEGER.
      expect(storedCapture({ ...a, binlogs: [{ fieldId: 100, files: [file('huge', Number.MAX_SAFE_INTEGER)] }] })).toBe('')
      expect(storedCapture({ ...a, binlogs: [{ fieldId: 100 }] } as unknown as SegmentInfo)).toBe('')
    })
  })
})
