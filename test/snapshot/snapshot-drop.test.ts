import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import type { CollectionInfo, SegmentInfo } from '../../src/meta/catalog-types.js'
import { keys } from '../../src/meta/keys.js'
import { layout } from '../../src/storage/layout.js'
import {
  backends,
  code,
  flushedSegment,
  makeWorld,
  metaEntries,
  objectKeys,
  openManager,
  readerStore,
  seedCollection,
  snapshotProblems,
  snapshotRecords,
  type Clock,
  type Stores,
} from './env.js'

/** dropSnapshot, verifySnapshot, restore/GC reads, manifest reuse and recovery on every backend. */
describe.each(backends)('drop, verify, reuse and recovery on $name', (backend) => {
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

  describe('dropSnapshot', () => {
    it('removes the record, its references and its objects', async () => {
      const dropped: unknown[] = []
      manager.on('snapshotDropped', (e) => dropped.push(e))
      const info = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'gone' })
      await manager.dropSnapshot('gone')
      expect(dropped).toEqual([{ id: info.id, name: 'gone', collectionId: coll.id }])
      expect(await metaEntries(stores.meta, 's/')).toEqual([])
      expect(await objectKeys(stores.objects, 'snapshots/')).toEqual([])
      await expect(manager.describeSnapshot('gone')).rejects.toEqual(code('NOT_FOUND'))
      // The name is free again.
      await expect(manager.createSnapshot({ collectionName: 'docs', snapshotName: 'gone' })).resolves.toMatchObject({ name: 'gone' })
    })

    it('is idempotent, and concurrent drops all resolve (one event)', async () => {
      await expect(manager.dropSnapshot('never-existed')).resolves.toBeUndefined()
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'twice' })
      let events = 0
      manager.on('snapshotDropped', () => events++)
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => manager.dropSnapshot('twice')))
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true)
      expect(events).toBe(1)
      await expect(manager.dropSnapshot('twice')).resolves.toBeUndefined()
      expect(await snapshotProblems(stores.meta, stores.objects)).toEqual([])
    })

    it('INVALID_ARGUMENT for a bad name', async () => {
      await expect(manager.dropSnapshot('a/b')).rejects.toEqual(code('INVALID_ARGUMENT'))
    })

    it('IN_USE while an unfinished restore job reads it, and nothing changes', async () => {
      const info = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'busy' })
      await stores.meta.batch([
        { type: 'put', key: keys.restoreSnapshotUse(info.id, 999), value: '' },
        { type: 'put', key: keys.restoreSnapshotUses(info.id), value: '1' },
      ])
      await expect(manager.dropSnapshot('busy')).rejects.toEqual(code('IN_USE'))
      expect(await manager.describeSnapshot('busy')).toEqual(info)
      expect((await manager.verifySnapshot('busy')).ok).toBe(true)
      await stores.meta.batch([
        { type: 'del', key: keys.restoreSnapshotUse(info.id, 999) },
        { type: 'del', key: keys.restoreSnapshotUses(info.id) },
      ])
      await manager.dropSnapshot('busy')
      expect(await manager.listSnapshots()).toEqual([])
    })

    it('dropping a collection keeps its snapshots, still loadable and verifiable', async () => {
      const info = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'keep' })
      await manager.catalog.dropCollection('docs')
      expect(await manager.listSnapshots()).toEqual([info])
      expect(await manager.listSnapshots({ collectionName: 'docs' })).toEqual([info])
      const full = await manager.describeSnapshot('keep', { includeCollectionInfo: true })
      expect(full.collection?.schema.fields).toHaveLength(4)
      expect(await manager.verifySnapshot('keep')).toMatchObject({ ok: true })
      const loaded = await readerStore(manager, stores.meta, stores.objects).load('keep')
      let n = 0
      for await (const _ of loaded.segments()) n++
      expect(n).toBe(3)
      const pinned = await readerStore(manager, stores.meta, stores.objects).pinnedIds()
      for (const s of segs) expect(pinned.segmentIds.has(s.id)).toBe(true)
      // A new collection of the same name can be snapshotted alongside.
      await seedCollection(manager, 'docs')
      await expect(manager.createSnapshot({ collectionName: 'docs', snapshotName: 'keep-2' })).resolves.toMatchObject({ segmentCount: 0 })
    })
  })

  describe('verifySnapshot', () => {
    it('ok when every object is intact', async () => {
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'v' })
      const fileCount = segs.reduce((n, s) => n + [...s.binlogs, ...s.statslogs, ...s.deltalogs, ...s.bm25logs, ...s.indexes, ...s.textIndexes, ...s.jsonKeyIndexes].reduce((m, l) => m + l.files.length, 0), 0)
      expect(await manager.verifySnapshot('v')).toEqual({ ok: true, checkedFiles: fileCount, missing: [], corrupt: [] })
    })

    it('reports missing files, size mismatches and checksum mismatches (sha256, md5); skips unknown algorithms', async () => {
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'v' })
      const [s] = segs
      const sha = s.binlogs[0].files[0] // sha256
      const md5 = s.binlogs[0].files[1] // md5
      const none = s.binlogs[1].files[0] // no checksum
      const crc = s.binlogs[2].files[0] // crc32c: not recomputed
      const gone = s.statslogs[0].files[0]
      const index = s.indexes[0].files[0]
      await stores.objects.put(sha.key, new Uint8Array(sha.size)) // same size, other bytes
      await stores.objects.put(md5.key, new Uint8Array(md5.size))
      await stores.objects.put(none.key, new Uint8Array(none.size)) // undetectable without a checksum
      await stores.objects.put(crc.key, new Uint8Array(crc.size)) // unknown algorithm: skipped
      await stores.objects.put(index.key, new Uint8Array(index.size + 1)) // size mismatch
      await stores.objects.delete([gone.key])
      const report = await manager.verifySnapshot('v')
      expect(report.ok).toBe(false)
      expect(report.missing).toEqual([gone.key])
      expect(report.corrupt).toEqual([sha.key, md5.key, index.key].sort())
    })

    it('reports a missing manifest and rejects CORRUPT for one that does not decode', async () => {
      const info = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'v' })
      const [m0, m1] = segs.map((s) => layout.snapshotManifest(coll.id, info.id, s.id))
      await stores.objects.delete([m0])
      const report = await manager.verifySnapshot('v')
      expect(report.ok).toBe(false)
      expect(report.missing).toEqual([m0])
      await stores.objects.put(m1, Buffer.from('not avro'))
      await expect(manager.verifySnapshot('v')).rejects.toEqual(code('CORRUPT'))
    })

    it('NOT_FOUND for an unknown snapshot', async () => {
      await expect(manager.verifySnapshot('nope')).rejects.toEqual(code('NOT_FOUND'))
    })
  })

  describe('load, referencedFiles and pinnedIds (restore and GC)', () => {
    it('load returns the metadata and the segments as captured', async () => {
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'l' })
      await manager.catalog.addDeltalogs(segs[0].id, [{ fieldId: coll.schema.fields[0].fieldId, files: [{ key: 'files/later', size: 3 }] }])
      const reader = readerStore(manager, stores.meta, stores.objects)
      const loaded = await reader.load('l')
      expect(loaded.info).toEqual(await manager.describeSnapshot('l'))
      expect(loaded.metadata).toMatchObject({
        formatVersion: 1,
        collection: { id: coll.id, name: 'docs', shardsNum: 2, channels: coll.channels, partitions: coll.partitions, schema: coll.schema },
        segmentIds: segs.map((s) => s.id),
      })
      const segments = []
      for await (const s of loaded.segments()) segments.push(s)
      expect(segments).toEqual(
        segs.map((s) => ({
          id: s.id, partitionId: s.partitionId, channel: s.channel, level: s.level, numRows: s.numRows,
          binlogs: s.binlogs, statslogs: s.statslogs, deltalogs: s.deltalogs, bm25logs: s.bm25logs,
          indexes: s.indexes, textIndexes: s.textIndexes, jsonKeyIndexes: s.jsonKeyIndexes,
        })),
      )
      await expect(reader.load('nope')).rejects.toEqual(code('NOT_FOUND'))
    })

    it('referencedFiles yields every file of every snapshot; pinnedIds the pinned segments and builds', async () => {
      const info = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'r' })
      const reader = readerStore(manager, stores.meta, stores.objects)
      const refs = []
      for await (const ref of reader.referencedFiles()) refs.push(ref)
      const expected = segs.flatMap((s) =>
        [...s.binlogs, ...s.statslogs, ...s.deltalogs, ...s.bm25logs, ...s.indexes, ...s.textIndexes, ...s.jsonKeyIndexes].flatMap((l) => l.files),
      )
      expect(refs.filter((r) => r.kind === 'data').map((r) => [r.key, r.size]).sort()).toEqual(expected.map((f) => [f.key, f.size]).sort())
      expect(refs.filter((r) => r.kind === 'snapshot').map((r) => r.key).sort()).toEqual(await objectKeys(stores.objects, 'snapshots/'))
      for (const r of refs) expect(r).toMatchObject({ snapshotId: info.id, state: 'committed' })
      for (const r of refs.filter((x) => x.kind === 'snapshot')) expect((await stores.objects.head(r.key))?.size).toBe(r.size)

      const pinned = await reader.pinnedIds()
      expect([...pinned.segmentIds].sort()).toEqual(segs.map((s) => s.id).sort())
      const builds = segs.flatMap((s) => [...s.indexes, ...s.textIndexes, ...s.jsonKeyIndexes].map((x) => x.buildId))
      expect([...pinned.buildIds].sort()).toEqual(builds.sort())

      // A committed snapshot whose manifest vanished is corrupt: GC must not trust a partial live set.
      await stores.objects.delete([layout.snapshotManifest(coll.id, info.id, segs[1].id)])
      const fresh = readerStore(manager, stores.meta, stores.objects)
      const drain = async () => {
        for await (const _ of fresh.referencedFiles()) void _
      }
      await expect(drain()).rejects.toEqual(code('CORRUPT'))

      await manager.dropSnapshot('r')
      const after = await reader.pinnedIds()
      expect(after.segmentIds.size + after.buildIds.size).toBe(0)
    })
  })

  describe('manifest reuse', () => {
    it('a second snapshot after one new segment writes exactly one manifest', async () => {
      const a = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
      const s4 = await flushedSegment(manager, stores.objects, coll)
      const before = await objectKeys(stores.objects, 'snapshots/')
      const b = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
      const added = (await objectKeys(stores.objects, 'snapshots/')).filter((k) => !before.includes(k))
      expect(added).toEqual([layout.snapshotManifest(coll.id, b.id, s4.id), layout.snapshotMetadata(coll.id, b.id)].sort())
      const meta = (await readerStore(manager, stores.meta, stores.objects).load('b')).metadata
      expect(meta.manifests).toEqual([...segs.map((s) => layout.snapshotManifest(coll.id, a.id, s.id)), layout.snapshotManifest(coll.id, b.id, s4.id)])
      expect(b.segmentCount).toBe(4)
    })

    it('rewrites the manifest of a segment that gained deltalogs or an index', async () => {
      const a = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
      await manager.catalog.addDeltalogs(segs[0].id, [{ fieldId: coll.schema.fields[0].fieldId, files: [{ key: 'files/more-deletes', size: 4 }] }])
      await manager.catalog.addSegmentIndex(segs[2].id, { indexName: 'vec_idx', files: [{ key: 'files/late-index', size: 9 }] })
      const b = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
      const meta = (await readerStore(manager, stores.meta, stores.objects).load('b')).metadata
      expect(meta.manifests).toEqual([
        layout.snapshotManifest(coll.id, b.id, segs[0].id),
        layout.snapshotManifest(coll.id, a.id, segs[1].id),
        layout.snapshotManifest(coll.id, b.id, segs[2].id),
      ])
      const segments = []
      for await (const s of (await readerStore(manager, stores.meta, stores.objects).load('b')).segments()) segments.push(s)
      expect(segments[0].deltalogs.flatMap((d) => d.files.map((f) => f.key))).toContain('files/more-deletes')
      // The first snapshot still sees its own, older manifest.
      const segmentsA = []
      for await (const s of (await readerStore(manager, stores.meta, stores.objects).load('a')).segments()) segmentsA.push(s)
      expect(segmentsA[0].deltalogs.flatMap((d) => d.files.map((f) => f.key))).not.toContain('files/more-deletes')
    })

    it('a manifest shared by a dropped snapshot and a failed create is deleted by whichever is marked last', async () => {
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
      await flushedSegment(manager, stores.objects, coll) // b writes one manifest and lists a's three
      const { objects } = stores
      const put = objects.put.bind(objects)
      const del = objects.delete.bind(objects)
      const gate = () => {
        let open!: () => void
        let entered!: () => void
        return { opened: new Promise<void>((r) => (open = r)), inside: new Promise<void>((r) => (entered = r)), open: () => open(), enter: () => entered() }
      }
      const b = gate()
      const a = gate()
      let deletes = 0
      objects.put = async (key, body, o) => {
        if (key.includes('/metadata/')) {
          b.enter()
          await b.opened
          throw new Error('injected failure of b')
        }
        return put(key, body, o)
      }
      objects.delete = async (keys, o) => {
        if (++deletes === 1) {
          a.enter()
          await a.opened
        }
        return del(keys, o)
      }
      try {
        const creating = manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
        await b.inside // b is pending and lists a's manifests
        const dropping = manager.dropSnapshot('a')
        await a.inside // a is marked deleting; it kept its manifests because b listed them
        b.open() // b fails; its cleanup is marked after a's, so it deletes them
        await expect(creating).rejects.toThrow(/injected/)
        a.open()
        await dropping
      } finally {
        objects.put = put
        objects.delete = del
      }
      expect(await snapshotRecords(stores.meta)).toEqual([])
      expect(await snapshotProblems(stores.meta, stores.objects)).toEqual([])
      expect(await objectKeys(stores.objects, 'snapshots/')).toEqual([])
    })

    it('drop keeps manifests another snapshot lists, and removes the rest', async () => {
      const a = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
      await flushedSegment(manager, stores.objects, coll)
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
      await manager.dropSnapshot('a')
      expect((await objectKeys(stores.objects, 'snapshots/')).filter((k) => k.includes(`/manifests/${a.id}/`))).toHaveLength(3)
      expect(await stores.objects.head(layout.snapshotMetadata(coll.id, a.id))).toBeUndefined()
      expect(await manager.verifySnapshot('b')).toMatchObject({ ok: true, missing: [], corrupt: [] })
      expect(await snapshotProblems(stores.meta, stores.objects)).toEqual([])
      // A third snapshot still reuses a's manifests (b keeps them alive).
      const before = (await objectKeys(stores.objects, 'snapshots/')).length
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'c' })
      expect((await objectKeys(stores.objects, 'snapshots/')).length).toBe(before + 1) // metadata only
      await manager.dropSnapshot('b')
      await manager.dropSnapshot('c')
      expect(await objectKeys(stores.objects, 'snapshots/')).toEqual([])
      expect(await metaEntries(stores.meta, 's/')).toEqual([])
    })
  })

  describe('recovery', () => {
    it('open() removes pending snapshots and finishes deleting ones', async () => {
      const keep = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'keep' })
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'half-dropped' })
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'half-made' })
      const records = await snapshotRecords(stores.meta)
      const dropped = records.find((r) => r.name === 'half-dropped')!
      const made = records.find((r) => r.name === 'half-made')!
      await manager.close()
      // Rewind the records as a crash would leave them.
      await stores.meta.open()
      await stores.meta.batch([
        { type: 'put', key: keys.snapshot(dropped.id), value: JSON.stringify({ ...dropped, state: 'deleting', deleteKeys: [dropped.metadataKey] }) },
        { type: 'put', key: keys.snapshot(made.id), value: JSON.stringify({ ...made, state: 'pending' }) },
      ])
      await stores.meta.close()
      manager = await openManager(stores.meta, stores.objects, { now: clock.now })
      expect(await manager.listSnapshots()).toEqual([keep])
      expect(await snapshotProblems(stores.meta, stores.objects)).toEqual([])
      expect((await manager.verifySnapshot('keep')).ok).toBe(true)
    })
  })
})
