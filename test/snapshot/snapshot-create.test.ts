import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import type { CollectionInfo, SegmentInfo } from '../../src/meta/catalog-types.js'
import { writeCollection } from '../../src/meta/records.js'
import { Transactor } from '../../src/meta/transaction.js'
import { segmentBytes } from '../../src/meta/segment-files.js'
import { layout } from '../../src/storage/layout.js'
import type { SnapshotInfo } from '../../src/snapshot/snapshot-types.js'
import {
  backends,
  code,
  flushedSegment,
  makeWorld,
  metaEntries,
  objectKeys,
  readerStore,
  seedCollection,
  snapshotProblems,
  snapshotRecords,
  type Clock,
  type Stores,
} from './env.js'

/** createSnapshot, listSnapshots and describeSnapshot on every backend. */
describe.each(backends)('create, list and describe on $name', (backend) => {
  let stores: Stores
  let manager: SnapshotManager
  let clock: Clock
  let coll: CollectionInfo
  let segs: SegmentInfo[]

  beforeEach(async () => {
    ;({ stores, manager, clock, coll, segs } = await makeWorld(backend))
  })

  afterEach(async () => {
    await manager.close()
    await stores.dispose()
  })

  describe('createSnapshot', () => {
    it('captures flushed segments only, with counts and sizes', async () => {
      await manager.catalog.allocSegment({ collection: 'docs' }) // growing: excluded
      const events: SnapshotInfo[] = []
      manager.on('snapshotCreated', (info) => events.push(info))
      const info = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'snap-1', description: 'first' })
      expect(info).toEqual({
        id: expect.any(Number),
        name: 'snap-1',
        collectionId: coll.id,
        collectionName: 'docs',
        description: 'first',
        createdAt: expect.any(Number),
        state: 'committed',
        segmentCount: 3,
        rowCount: 357,
        sizeBytes: segs.reduce((n, s) => n + segmentBytes(s), 0),
      })
      expect(events).toEqual([info])
      expect(await objectKeys(stores.objects, 'snapshots/')).toEqual(
        [layout.snapshotMetadata(coll.id, info.id), ...segs.map((s) => layout.snapshotManifest(coll.id, info.id, s.id))].sort(),
      )
      expect(await snapshotProblems(stores.meta, stores.objects)).toEqual([])
    })

    it('excludes compacted-away and dropped segments and dropped index files', async () => {
      const result = await manager.catalog.compact({
        collection: 'docs',
        sources: [segs[0].id, segs[2].id],
        result: { numRows: 107, binlogs: [{ fieldId: coll.schema.fields[0].fieldId, files: [{ key: 'files/compacted/1', size: 5 }] }] },
      })
      await manager.catalog.dropSegment(segs[1].id)
      const s4 = await flushedSegment(manager, stores.objects, coll, { numRows: 1 })
      await manager.catalog.dropIndex('docs', 'vec_idx')
      const info = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'after-compaction' })
      expect(info.segmentCount).toBe(2)
      expect(info.rowCount).toBe(108)
      const loaded = await readerStore(manager, stores.meta, stores.objects).load('after-compaction')
      const segments = []
      for await (const s of loaded.segments()) segments.push(s)
      expect(segments.map((s) => s.id).sort((a, b) => a - b)).toEqual([result.id, s4.id].sort((a, b) => a - b))
      expect(segments.find((s) => s.id === s4.id)?.indexes).toEqual([]) // vec_idx was dropped
      expect(segments.find((s) => s.id === s4.id)?.textIndexes).toHaveLength(1)
      expect(loaded.metadata.indexes).toEqual([])
    })

    it('snapshots an empty collection', async () => {
      await seedCollection(manager, 'empty')
      const info = await manager.createSnapshot({ collectionName: 'empty', snapshotName: 'nothing' })
      expect(info).toMatchObject({ segmentCount: 0, rowCount: 0, sizeBytes: 0, state: 'committed' })
      expect((await manager.verifySnapshot('nothing')).ok).toBe(true)
    })

    it.each([
      '', '.hidden', '-dash', 'a/b', 'a\\b', 'a..b', '..', 'with space', 'tab\t', 'nul\u0000', 'é', 'x'.repeat(256), 42, undefined,
    ])('rejects the name %j with INVALID_ARGUMENT and writes nothing', async (name) => {
      const before = await metaEntries(stores.meta, 's/')
      await expect(manager.createSnapshot({ collectionName: 'docs', snapshotName: name as string })).rejects.toEqual(code('INVALID_ARGUMENT'))
      expect(await metaEntries(stores.meta, 's/')).toEqual(before)
      expect(await objectKeys(stores.objects, 'snapshots/')).toEqual([])
    })

    it.each(['a', '_', '0', 'a.b-c_d', 'x'.repeat(255), 'v1.2.3'])('accepts the name %j', async (name) => {
      await expect(manager.createSnapshot({ collectionName: 'docs', snapshotName: name })).resolves.toMatchObject({ name })
    })

    it('rejects a non-string description with TypeError and an empty collection name with INVALID_ARGUMENT', async () => {
      await expect(manager.createSnapshot({ collectionName: 'docs', snapshotName: 's', description: 5 as unknown as string })).rejects.toBeInstanceOf(TypeError)
      await expect(manager.createSnapshot({ collectionName: '', snapshotName: 's' })).rejects.toEqual(code('INVALID_ARGUMENT'))
      expect(await snapshotRecords(stores.meta)).toEqual([])
    })

    it('NOT_FOUND for a missing collection', async () => {
      const err = await manager.createSnapshot({ collectionName: 'nope', snapshotName: 's' }).catch((e: unknown) => e)
      expect(err).toEqual(code('NOT_FOUND'))
      expect((err as Error).message).toMatch(/collection not found/)
      expect(await snapshotRecords(stores.meta)).toEqual([])
    })

    it('ALREADY_EXISTS for a taken name, even of another collection', async () => {
      await seedCollection(manager, 'other')
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'taken' })
      const err = await manager.createSnapshot({ collectionName: 'other', snapshotName: 'taken' }).catch((e: unknown) => e)
      expect(err).toEqual(code('ALREADY_EXISTS'))
      expect((err as Error).message).toMatch(/snapshot already exists/)
    })

    it('FAILED_PRECONDITION on a collection being restored into', async () => {
      await new Transactor(stores.meta).run(async (tx) => writeCollection(tx, { ...coll, state: 'restoring' }))
      await expect(manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })).rejects.toEqual(code('FAILED_PRECONDITION'))
      expect(await snapshotRecords(stores.meta)).toEqual([])
    })

    it('10 concurrent creates of one name: exactly one wins', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => manager.createSnapshot({ collectionName: 'docs', snapshotName: 'race', description: String(i) })),
      )
      const won = results.filter((r) => r.status === 'fulfilled')
      expect(won).toHaveLength(1)
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toEqual(code('ALREADY_EXISTS'))
      expect(await snapshotRecords(stores.meta)).toHaveLength(1)
      expect(await snapshotProblems(stores.meta, stores.objects)).toEqual([])
    })

    it('ABORTED before it starts, writing nothing', async () => {
      const ac = new AbortController()
      ac.abort()
      await expect(manager.createSnapshot({ collectionName: 'docs', snapshotName: 's', signal: ac.signal })).rejects.toEqual(code('ABORTED'))
      expect(await snapshotRecords(stores.meta)).toEqual([])
    })

    it('ABORTED while writing manifests, cleaning up what it wrote', async () => {
      const ac = new AbortController()
      const { objects } = stores
      const put = objects.put.bind(objects)
      let puts = 0
      objects.put = async (key, body, o) => {
        if (key.startsWith('snapshots/') && ++puts === 2) ac.abort()
        return put(key, body, o)
      }
      try {
        await expect(manager.createSnapshot({ collectionName: 'docs', snapshotName: 's', signal: ac.signal })).rejects.toEqual(code('ABORTED'))
      } finally {
        objects.put = put
      }
      expect(await snapshotRecords(stores.meta)).toEqual([])
      expect(await objectKeys(stores.objects, 'snapshots/')).toEqual([])
      expect(await snapshotProblems(stores.meta, stores.objects)).toEqual([])
      await expect(manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })).resolves.toMatchObject({ segmentCount: 3 })
    })
  })

  describe('listSnapshots', () => {
    it('lists committed snapshots by createdAt then id, filtered by collection', async () => {
      await seedCollection(manager, 'other')
      const a = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
      clock.frozen = true
      const c = await manager.createSnapshot({ collectionName: 'other', snapshotName: 'c' })
      const b = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
      expect(b.createdAt).toBe(c.createdAt)
      expect((await manager.listSnapshots()).map((s) => s.name)).toEqual(['a', 'c', 'b'])
      expect(await manager.listSnapshots({ collectionName: 'docs' })).toEqual([a, b])
      expect(await manager.listSnapshots({ collectionName: 'nope' })).toEqual([])
    })

    it('does not list a snapshot that is being created', async () => {
      let release!: () => void
      const gate = new Promise<void>((r) => (release = r))
      const { objects } = stores
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
      const creating = manager.createSnapshot({ collectionName: 'docs', snapshotName: 'slow' })
      await inside
      try {
        expect(await manager.listSnapshots()).toEqual([])
        await expect(manager.describeSnapshot('slow')).rejects.toEqual(code('NOT_FOUND'))
        await expect(readerStore(manager, stores.meta, stores.objects).load('slow')).rejects.toEqual(code('FAILED_PRECONDITION'))
        await expect(manager.dropSnapshot('slow')).rejects.toEqual(code('FAILED_PRECONDITION'))
        // GC still sees the pending snapshot's pins and files (from the catalog).
        const reader = readerStore(manager, stores.meta, stores.objects)
        const pinned = await reader.pinnedIds()
        expect([...pinned.segmentIds].sort()).toEqual(segs.map((s) => s.id).sort())
        const refs = []
        for await (const ref of reader.referencedFiles()) refs.push(ref)
        expect(refs.every((r) => r.state === 'pending')).toBe(true)
        const dataKeys = new Set(refs.filter((r) => r.kind === 'data').map((r) => r.key))
        for (const s of segs) for (const fb of s.binlogs) for (const f of fb.files) expect(dataKeys.has(f.key)).toBe(true)
      } finally {
        release()
        objects.put = put
      }
      await creating
      expect((await manager.listSnapshots()).map((s) => s.name)).toEqual(['slow'])
    })
  })

  describe('describeSnapshot', () => {
    it('describes without and with collection info', async () => {
      const info = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'd' })
      const plain = await manager.describeSnapshot('d')
      expect(plain).toEqual(info)
      expect(plain).not.toHaveProperty('collection')
      const full = await manager.describeSnapshot('d', { includeCollectionInfo: true })
      const current = await manager.catalog.getCollection('docs')
      expect(full.collection).toEqual({ schema: current.schema, shardsNum: 2, partitions: current.partitions, properties: { 'collection.ttl.seconds': '0' } })
      expect(full.collection?.schema.fields.map((f) => f.fieldId)).toEqual(current.schema.fields.map((f) => f.fieldId))
      expect(full.indexes).toEqual(await manager.catalog.listIndexes('docs'))
      expect(full.indexes?.[0]).toMatchObject({ id: expect.any(Number), name: 'vec_idx' })
    })

    it('keeps the collection as captured after it changes', async () => {
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'd' })
      await manager.catalog.createPartition('docs', 'p2')
      await manager.catalog.dropIndex('docs', 'vec_idx')
      const full = await manager.describeSnapshot('d', { includeCollectionInfo: true })
      expect(full.collection?.partitions.map((p) => p.name)).toEqual(['_default', 'p1'])
      expect(full.indexes?.map((i) => i.name)).toEqual(['vec_idx'])
    })

    it('NOT_FOUND for an unknown name, INVALID_ARGUMENT for a bad one', async () => {
      const err = await manager.describeSnapshot('missing').catch((e: unknown) => e)
      expect(err).toEqual(code('NOT_FOUND'))
      expect((err as Error).message).toMatch(/snapshot not found/)
      await expect(manager.describeSnapshot('../x')).rejects.toEqual(code('INVALID_ARGUMENT'))
    })

    it('UNSUPPORTED_VERSION for metadata of an unknown formatVersion', async () => {
      const info = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'future' })
      const key = layout.snapshotMetadata(coll.id, info.id)
      const json = JSON.parse(Buffer.from((await stores.objects.get(key)) as Uint8Array).toString()) as Record<string, unknown>
      await stores.objects.put(key, Buffer.from(JSON.stringify({ ...json, formatVersion: 2 })))
      await expect(manager.describeSnapshot('future')).resolves.toMatchObject({ name: 'future' })
      await expect(manager.describeSnapshot('future', { includeCollectionInfo: true })).rejects.toEqual(code('UNSUPPORTED_VERSION'))
      await expect(manager.verifySnapshot('future')).rejects.toEqual(code('UNSUPPORTED_VERSION'))
      await expect(readerStore(manager, stores.meta, stores.objects).load('future')).rejects.toEqual(code('UNSUPPORTED_VERSION'))
    })
  })
})
