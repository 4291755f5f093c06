import { describe, expect, it } from 'vitest'
import { writeCollection } from '../../src/meta/records.js'
import { Transactor } from '../../src/meta/transaction.js'
import { segmentBytes } from '../../src/meta/segment-files.js'
import { layout } from '../../src/storage/layout.js'
import type { SnapshotInfo } from '../../src/snapshot/snapshot-types.js'
import {
  backends,
  code,
  flushedSegment,
  metaEntries,
  objectKeys,
  readerStore,
  seedCollection,
  snapshotProblems,
  snapshotRecords,
  worldPerTest,
} from './env.js'

/** createSnapshot, listSnapshots and describeSnapshot on every backend. */
describe.each(backends)('create, list and describe on $name', (backend) => {
  const w = worldPerTest(backend)

  describe('createSnapshot', () => {
    it('captures flushed segments only, with counts and sizes', async () => {
      await w.manager.catalog.allocSegment({ collection: 'docs' }) // growing: excluded
      const events: SnapshotInfo[] = []
      w.manager.on('snapshotCreated', (info) => events.push(info))
      const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'snap-1', description: 'first' })
      expect(info).toEqual({
        id: expect.any(Number),
        name: 'snap-1',
        collectionId: w.coll.id,
        collectionName: 'docs',
        description: 'first',
        createdAt: expect.any(Number),
        state: 'committed',
        segmentCount: 3,
        rowCount: 357,
        sizeBytes: w.segs.reduce((n, s) => n + segmentBytes(s), 0),
        holds: [],
      })
      expect(events).toEqual([info])
      expect(await objectKeys(w.stores.objects, 'snapshots/')).toEqual(
        [layout.snapshotMetadata(w.coll.id, info.id), layout.snapshotList(w.coll.id, info.id), ...w.segs.map((s) => layout.snapshotManifest(w.coll.id, info.id, s.id))].sort(),
      )
      expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
    })

    it('excludes compacted-away and dropped segments and dropped index files', async () => {
      const result = await w.manager.catalog.compact({
        collection: 'docs',
        sources: [w.segs[0].id, w.segs[2].id],
        result: { numRows: 107, binlogs: [{ fieldId: w.coll.schema.fields[0].fieldId, files: [{ key: 'files/compacted/1', size: 5 }] }] },
      })
      await w.manager.catalog.dropSegment(w.segs[1].id)
      const s4 = await flushedSegment(w.manager, w.stores.objects, w.coll, { numRows: 1 })
      await w.manager.catalog.dropIndex('docs', 'vec_idx')
      const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'after-compaction' })
      expect(info.segmentCount).toBe(2)
      expect(info.rowCount).toBe(108)
      const loaded = await readerStore(w.manager, w.stores.meta, w.stores.objects).load('after-compaction')
      const segments = []
      for await (const s of loaded.segments()) segments.push(s)
      expect(segments.map((s) => s.id).sort((a, b) => a - b)).toEqual([result.id, s4.id].sort((a, b) => a - b))
      expect(segments.find((s) => s.id === s4.id)?.indexes).toEqual([]) // vec_idx was dropped
      expect(segments.find((s) => s.id === s4.id)?.textIndexes).toHaveLength(1)
      expect(loaded.metadata.indexes).toEqual([])
    })

    it('snapshots an empty collection', async () => {
      await seedCollection(w.manager, 'empty')
      const info = await w.manager.createSnapshot({ collectionName: 'empty', snapshotName: 'nothing' })
      expect(info).toMatchObject({ segmentCount: 0, rowCount: 0, sizeBytes: 0, state: 'committed' })
      expect((await w.manager.verifySnapshot('nothing')).ok).toBe(true)
    })

    it.each([
      '', '.hidden', '-dash', 'a/b', 'a\\b', 'a..b', '..', 'with space', 'tab\t', 'nul\u0000', 'é', 'x'.repeat(256),
    ])('rejects the name %j with INVALID_ARGUMENT and writes nothing', async (name) => {
      const before = await metaEntries(w.stores.meta, 's/')
      await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: name })).rejects.toEqual(code('INVALID_ARGUMENT'))
      expect(await metaEntries(w.stores.meta, 's/')).toEqual(before)
      expect(await objectKeys(w.stores.objects, 'snapshots/')).toEqual([])
    })

    it('rejects names that are not strings with a TypeError, like the catalog, and writes nothing', async () => {
      const before = await metaEntries(w.stores.meta, 's/')
      for (const name of [42, undefined, null, ['a']] as never[]) {
        await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: name })).rejects.toThrow(/^Expected `snapshotName` to be a string, got `/)
        await expect(w.manager.createSnapshot({ collectionName: name, snapshotName: 's' })).rejects.toThrow(/^Expected `collectionName` to be a string, got `/)
        await expect(w.manager.describeSnapshot(name)).rejects.toThrow(TypeError)
        await expect(w.manager.dropSnapshot(name)).rejects.toThrow(TypeError)
        await expect(w.manager.verifySnapshot(name)).rejects.toThrow(TypeError)
      }
      expect(await metaEntries(w.stores.meta, 's/')).toEqual(before)
      expect(await objectKeys(w.stores.objects, 'snapshots/')).toEqual([])
    })

    it.each(['a', '_', '0', 'a.b-c_d', 'x'.repeat(255), 'v1.2.3'])('accepts the name %j', async (name) => {
      await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: name })).resolves.toMatchObject({ name })
    })

    it('rejects a non-string description with TypeError and an empty collection name with INVALID_ARGUMENT', async () => {
      await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's', description: 5 as unknown as string })).rejects.toBeInstanceOf(TypeError)
      await expect(w.manager.createSnapshot({ collectionName: '', snapshotName: 's' })).rejects.toEqual(code('INVALID_ARGUMENT'))
      expect(await snapshotRecords(w.stores.meta)).toEqual([])
    })

    it('NOT_FOUND for a missing collection', async () => {
      const err = await w.manager.createSnapshot({ collectionName: 'nope', snapshotName: 's' }).catch((e: unknown) => e)
      expect(err).toEqual(code('NOT_FOUND'))
      expect((err as Error).message).toMatch(/collection not found/)
      expect(await snapshotRecords(w.stores.meta)).toEqual([])
    })

    it('ALREADY_EXISTS for a taken name, even of another collection', async () => {
      await seedCollection(w.manager, 'other')
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'taken' })
      const err = await w.manager.createSnapshot({ collectionName: 'other', snapshotName: 'taken' }).catch((e: unknown) => e)
      expect(err).toEqual(code('ALREADY_EXISTS'))
      expect((err as Error).message).toMatch(/snapshot already exists/)
    })

    it('FAILED_PRECONDITION on a collection being restored into', async () => {
      await new Transactor(w.stores.meta).run(async (tx) => writeCollection(tx, { ...w.coll, state: 'restoring' }))
      await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })).rejects.toEqual(code('FAILED_PRECONDITION'))
      expect(await snapshotRecords(w.stores.meta)).toEqual([])
    })

    it('10 concurrent creates of one name: exactly one wins', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'race', description: String(i) })),
      )
      const won = results.filter((r) => r.status === 'fulfilled')
      expect(won).toHaveLength(1)
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toEqual(code('ALREADY_EXISTS'))
      expect(await snapshotRecords(w.stores.meta)).toHaveLength(1)
      expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
    })

    it('ABORTED before it starts, writing nothing', async () => {
      const ac = new AbortController()
      ac.abort()
      await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's', signal: ac.signal })).rejects.toEqual(code('ABORTED'))
      expect(await snapshotRecords(w.stores.meta)).toEqual([])
    })

    it('ABORTED while writing manifests, cleaning up what it wrote', async () => {
      const ac = new AbortController()
      const { objects } = w.stores
      const put = objects.put.bind(objects)
      let puts = 0
      objects.put = async (key, body, o) => {
        if (key.startsWith('snapshots/') && ++puts === 2) ac.abort()
        return put(key, body, o)
      }
      try {
        await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's', signal: ac.signal })).rejects.toEqual(code('ABORTED'))
      } finally {
        objects.put = put
      }
      expect(await snapshotRecords(w.stores.meta)).toEqual([])
      expect(await objectKeys(w.stores.objects, 'snapshots/')).toEqual([])
      expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
      await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })).resolves.toMatchObject({ segmentCount: 3 })
    })
  })

  describe('listSnapshots', () => {
    it('lists committed snapshots by createdAt then id, filtered by collection', async () => {
      await seedCollection(w.manager, 'other')
      const a = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
      w.clock.frozen = true
      const c = await w.manager.createSnapshot({ collectionName: 'other', snapshotName: 'c' })
      const b = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
      expect(b.createdAt).toBe(c.createdAt)
      expect((await w.manager.listSnapshots()).map((s) => s.name)).toEqual(['a', 'c', 'b'])
      expect(await w.manager.listSnapshots({ collectionName: 'docs' })).toEqual([a, b])
      expect(await w.manager.listSnapshots({ collectionName: 'nope' })).toEqual([])
    })

    it('does not list a snapshot that is being created', async () => {
      let release!: () => void
      const gate = new Promise<void>((r) => (release = r))
      const { objects } = w.stores
      const put = objects.put.bind(objects)
      let entered!: () => void
      const inside = new Promise<void>((r) => (entered = r))
      objects.put = async (key, body, o) => {
        if (key.endsWith('.json')) {
          entered()
          await gate
        }
        return put(key, body, o)
      }
      const creating = w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'slow' })
      await inside
      try {
        expect(await w.manager.listSnapshots()).toEqual([])
        await expect(w.manager.describeSnapshot('slow')).rejects.toEqual(code('NOT_FOUND'))
        await expect(readerStore(w.manager, w.stores.meta, w.stores.objects).load('slow')).rejects.toEqual(code('FAILED_PRECONDITION'))
        await expect(w.manager.dropSnapshot('slow')).rejects.toEqual(code('FAILED_PRECONDITION'))
        // GC still sees the pending snapshot's pins (from its list) and owns its objects.
        const reader = readerStore(w.manager, w.stores.meta, w.stores.objects)
        const mark = await reader.mark()
        expect([...mark.segmentIds].sort()).toEqual(w.segs.map((s) => s.id).sort())
        expect(mark.committedFiles.size).toBe(0)
        for (const key of await objectKeys(w.stores.objects, 'snapshots/')) expect(mark.isReferenced(key)).toBe(true)
      } finally {
        release()
        objects.put = put
      }
      await creating
      expect((await w.manager.listSnapshots()).map((s) => s.name)).toEqual(['slow'])
    })
  })

  describe('describeSnapshot', () => {
    it('describes without and with collection info', async () => {
      const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'd' })
      const plain = await w.manager.describeSnapshot('d')
      expect(plain).toEqual(info)
      expect(plain).not.toHaveProperty('collection')
      const full = await w.manager.describeSnapshot('d', { includeCollectionInfo: true })
      const current = await w.manager.catalog.getCollection('docs')
      expect(full.collection).toEqual({ schema: current.schema, shardsNum: 2, partitions: current.partitions, properties: { 'collection.ttl.seconds': '0' } })
      expect(full.collection?.schema.fields.map((f) => f.fieldId)).toEqual(current.schema.fields.map((f) => f.fieldId))
      expect(full.indexes).toEqual(await w.manager.catalog.listIndexes('docs'))
      expect(full.indexes?.[0]).toMatchObject({ id: expect.any(Number), name: 'vec_idx' })
    })

    it('keeps the collection as captured after it changes', async () => {
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'd' })
      await w.manager.catalog.createPartition('docs', 'p2')
      await w.manager.catalog.dropIndex('docs', 'vec_idx')
      const full = await w.manager.describeSnapshot('d', { includeCollectionInfo: true })
      expect(full.collection?.partitions.map((p) => p.name)).toEqual(['_default', 'p1'])
      expect(full.indexes?.map((i) => i.name)).toEqual(['vec_idx'])
    })

    it('NOT_FOUND for an unknown name, INVALID_ARGUMENT for a bad one', async () => {
      const err = await w.manager.describeSnapshot('missing').catch((e: unknown) => e)
      expect(err).toEqual(code('NOT_FOUND'))
      expect((err as Error).message).toMatch(/snapshot not found/)
      await expect(w.manager.describeSnapshot('../x')).rejects.toEqual(code('INVALID_ARGUMENT'))
    })

    it('UNSUPPORTED_VERSION for metadata of an unknown formatVersion', async () => {
      const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'future' })
      const key = layout.snapshotMetadata(w.coll.id, info.id)
      const json = JSON.parse(Buffer.from((await w.stores.objects.get(key)) as Uint8Array).toString()) as Record<string, unknown>
      await w.stores.objects.put(key, Buffer.from(JSON.stringify({ ...json, formatVersion: 2 })))
      // Checked with and without collection info (the version is what makes the snapshot readable at all).
      await expect(w.manager.describeSnapshot('future')).rejects.toEqual(code('UNSUPPORTED_VERSION'))
      await expect(w.manager.describeSnapshot('future', { includeCollectionInfo: true })).rejects.toEqual(code('UNSUPPORTED_VERSION'))
      await expect(w.manager.verifySnapshot('future')).rejects.toEqual(code('UNSUPPORTED_VERSION'))
      await expect(readerStore(w.manager, w.stores.meta, w.stores.objects).load('future')).rejects.toEqual(code('UNSUPPORTED_VERSION'))
    })
  })
})
