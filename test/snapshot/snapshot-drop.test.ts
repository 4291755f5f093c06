import { snapshotEntries } from './env.js'
import { describe, expect, it } from 'vitest'
import { keys } from '../../src/meta/keys.js'
import { layout } from '../../src/storage/layout.js'
import {
  backends,
  code,
  flushedSegment,
  objectKeys,
  openManager,
  readerStore,
  seedCollection,
  snapshotProblems,
  snapshotRecords,
  worldPerTest,
} from './env.js'

/** dropSnapshot, verifySnapshot, restore/GC reads, manifest reuse and recovery on every backend. */
describe.each(backends)('drop, verify, reuse and recovery on $name', (backend) => {
  const w = worldPerTest(backend)

  describe('dropSnapshot', () => {
    it('removes the record, its references and its objects', async () => {
      const dropped: unknown[] = []
      w.manager.on('snapshotDropped', (e) => dropped.push(e))
      const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'gone' })
      await w.manager.dropSnapshot('gone')
      expect(dropped).toEqual([{ id: info.id, name: 'gone', collectionId: w.coll.id }])
      expect(await snapshotEntries(w.stores.meta)).toEqual([])
      expect(await objectKeys(w.stores.objects, 'snapshots/')).toEqual([])
      await expect(w.manager.describeSnapshot('gone')).rejects.toEqual(code('NOT_FOUND'))
      // The name is free again.
      await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'gone' })).resolves.toMatchObject({ name: 'gone' })
    })

    it('is idempotent, and concurrent drops all resolve (one event)', async () => {
      await expect(w.manager.dropSnapshot('never-existed')).resolves.toBeUndefined()
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'twice' })
      let events = 0
      w.manager.on('snapshotDropped', () => events++)
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => w.manager.dropSnapshot('twice')))
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true)
      expect(events).toBe(1)
      await expect(w.manager.dropSnapshot('twice')).resolves.toBeUndefined()
      expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
    })

    it('INVALID_ARGUMENT for a bad name', async () => {
      await expect(w.manager.dropSnapshot('a/b')).rejects.toEqual(code('INVALID_ARGUMENT'))
    })

    it('IN_USE while an unfinished restore job reads it, and nothing changes', async () => {
      const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'busy' })
      await w.stores.meta.batch([
        { type: 'put', key: keys.restoreSnapshotUse(info.id, 999), value: '' },
        { type: 'put', key: keys.restoreSnapshotUses(info.id), value: '1' },
      ])
      await expect(w.manager.dropSnapshot('busy')).rejects.toEqual(code('IN_USE'))
      expect(await w.manager.describeSnapshot('busy')).toEqual(info)
      expect((await w.manager.verifySnapshot('busy')).ok).toBe(true)
      await w.stores.meta.batch([
        { type: 'del', key: keys.restoreSnapshotUse(info.id, 999) },
        { type: 'del', key: keys.restoreSnapshotUses(info.id) },
      ])
      await w.manager.dropSnapshot('busy')
      expect(await w.manager.listSnapshots()).toEqual([])
    })

    it('dropping a collection keeps its snapshots, still loadable and verifiable', async () => {
      const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'keep' })
      await w.manager.catalog.dropCollection('docs')
      expect(await w.manager.listSnapshots()).toEqual([info])
      expect(await w.manager.listSnapshots({ collectionName: 'docs' })).toEqual([info])
      const full = await w.manager.describeSnapshot('keep', { includeCollectionInfo: true })
      expect(full.collection?.schema.fields).toHaveLength(4)
      expect(await w.manager.verifySnapshot('keep')).toMatchObject({ ok: true })
      const loaded = await readerStore(w.manager, w.stores.meta, w.stores.objects).load('keep')
      let n = 0
      for await (const _ of loaded.segments()) n++
      expect(n).toBe(3)
      const pinned = await readerStore(w.manager, w.stores.meta, w.stores.objects).pinnedIds()
      for (const s of w.segs) expect(pinned.segmentIds.has(s.id)).toBe(true)
      // A new collection of the same name can be snapshotted alongside.
      await seedCollection(w.manager, 'docs')
      await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'keep-2' })).resolves.toMatchObject({ segmentCount: 0 })
    })
  })

  describe('verifySnapshot', () => {
    it('ok when every object is intact', async () => {
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'v' })
      const fileCount = w.segs.reduce((n, s) => n + [...s.binlogs, ...s.statslogs, ...s.deltalogs, ...s.bm25logs, ...s.indexes, ...s.textIndexes, ...s.jsonKeyIndexes].reduce((m, l) => m + l.files.length, 0), 0)
      expect(await w.manager.verifySnapshot('v')).toEqual({ ok: true, checkedFiles: fileCount, missing: [], corrupt: [] })
    })

    it('reports missing files, size mismatches and checksum mismatches (sha256, md5); skips unknown algorithms', async () => {
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'v' })
      const [s] = w.segs
      const sha = s.binlogs[0].files[0] // sha256
      const md5 = s.binlogs[0].files[1] // md5
      const none = s.binlogs[1].files[0] // no checksum
      const crc = s.binlogs[2].files[0] // crc32c: not recomputed
      const gone = s.statslogs[0].files[0]
      const index = s.indexes[0].files[0]
      await w.stores.objects.put(sha.key, new Uint8Array(sha.size)) // same size, other bytes
      await w.stores.objects.put(md5.key, new Uint8Array(md5.size))
      await w.stores.objects.put(none.key, new Uint8Array(none.size)) // undetectable without a checksum
      await w.stores.objects.put(crc.key, new Uint8Array(crc.size)) // unknown algorithm: skipped
      await w.stores.objects.put(index.key, new Uint8Array(index.size + 1)) // size mismatch
      await w.stores.objects.delete([gone.key])
      const report = await w.manager.verifySnapshot('v')
      expect(report.ok).toBe(false)
      expect(report.missing).toEqual([gone.key])
      expect(report.corrupt).toEqual([sha.key, md5.key, index.key].sort())
    })

    it('reports a missing manifest and rejects CORRUPT for one that does not decode', async () => {
      const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'v' })
      const [m0, m1] = w.segs.map((s) => layout.snapshotManifest(w.coll.id, info.id, s.id))
      await w.stores.objects.delete([m0])
      const report = await w.manager.verifySnapshot('v')
      expect(report.ok).toBe(false)
      expect(report.missing).toEqual([m0])
      await w.stores.objects.put(m1, Buffer.from('not avro'))
      await expect(w.manager.verifySnapshot('v')).rejects.toEqual(code('CORRUPT'))
    })

    it('NOT_FOUND for an unknown snapshot', async () => {
      await expect(w.manager.verifySnapshot('nope')).rejects.toEqual(code('NOT_FOUND'))
    })
  })

  describe('load, referencedFiles and pinnedIds (restore and GC)', () => {
    it('load returns the metadata and the segments as captured', async () => {
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'l' })
      await w.manager.catalog.addDeltalogs(w.segs[0].id, [{ fieldId: w.coll.schema.fields[0].fieldId, files: [{ key: 'files/later', size: 3 }] }])
      const reader = readerStore(w.manager, w.stores.meta, w.stores.objects)
      const loaded = await reader.load('l')
      expect(loaded.info).toEqual(await w.manager.describeSnapshot('l'))
      expect(loaded.metadata).toMatchObject({
        formatVersion: 1,
        collection: { id: w.coll.id, name: 'docs', shardsNum: 2, channels: w.coll.channels, partitions: w.coll.partitions, schema: w.coll.schema },
        segmentIds: w.segs.map((s) => s.id),
      })
      const segments = []
      for await (const s of loaded.segments()) segments.push(s)
      expect(segments).toEqual(
        w.segs.map((s) => ({
          id: s.id, partitionId: s.partitionId, channel: s.channel, level: s.level, numRows: s.numRows,
          binlogs: s.binlogs, statslogs: s.statslogs, deltalogs: s.deltalogs, bm25logs: s.bm25logs,
          indexes: s.indexes, textIndexes: s.textIndexes, jsonKeyIndexes: s.jsonKeyIndexes,
        })),
      )
      await expect(reader.load('nope')).rejects.toEqual(code('NOT_FOUND'))
    })

    it('mark() gives GC every file of committed snapshots, their objects, and the pinned segments and builds', async () => {
      const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'r' })
      const reader = readerStore(w.manager, w.stores.meta, w.stores.objects)
      const mark = await reader.mark()
      const expected = w.segs.flatMap((s) =>
        [...s.binlogs, ...s.statslogs, ...s.deltalogs, ...s.bm25logs, ...s.indexes, ...s.textIndexes, ...s.jsonKeyIndexes].flatMap((l) => l.files),
      )
      expect([...mark.committedFiles].sort()).toEqual(expected.map((f) => [f.key, f.size]).sort())
      for (const key of await objectKeys(w.stores.objects, 'snapshots/')) expect(mark.isReferenced(key)).toBe(true)
      expect(mark.isReferenced(layout.snapshotManifest(w.coll.id, info.id + 1000, w.segs[0].id))).toBe(false)
      const manifests = w.segs.map((s) => layout.snapshotManifest(w.coll.id, info.id, s.id))
      expect([...mark.committedObjects].sort()).toEqual([layout.snapshotList(w.coll.id, info.id), layout.snapshotMetadata(w.coll.id, info.id), ...manifests].sort())
      expect([...mark.segmentIds].sort()).toEqual(w.segs.map((s) => s.id).sort())
      const builds = w.segs.flatMap((s) => [...s.indexes, ...s.textIndexes, ...s.jsonKeyIndexes].map((x) => x.buildId))
      expect([...mark.buildIds].sort()).toEqual(builds.sort())

      // A second mark reads no list and no manifest: both are cached by key (and hash).
      const reads = { ...reader.markReads }
      await reader.mark()
      expect(reader.markReads).toEqual(reads)

      // A committed snapshot whose manifest vanished is corrupt: GC must not trust a partial live set.
      await w.stores.objects.delete([layout.snapshotManifest(w.coll.id, info.id, w.segs[1].id)])
      const fresh = readerStore(w.manager, w.stores.meta, w.stores.objects)
      await expect(fresh.mark()).rejects.toEqual(code('CORRUPT'))

      await w.manager.dropSnapshot('r')
      const after = await reader.pinnedIds()
      expect(after.segmentIds.size + after.buildIds.size).toBe(0)
    })
  })

  describe('manifest reuse', () => {
    it('a second snapshot after one new segment writes exactly one manifest', async () => {
      const a = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
      const s4 = await flushedSegment(w.manager, w.stores.objects, w.coll)
      const before = await objectKeys(w.stores.objects, 'snapshots/')
      const b = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
      const added = (await objectKeys(w.stores.objects, 'snapshots/')).filter((k) => !before.includes(k))
      expect(added).toEqual([layout.snapshotList(w.coll.id, b.id), layout.snapshotManifest(w.coll.id, b.id, s4.id), layout.snapshotMetadata(w.coll.id, b.id)].sort())
      const meta = (await readerStore(w.manager, w.stores.meta, w.stores.objects).load('b')).metadata
      expect(meta.manifests).toEqual([...w.segs.map((s) => layout.snapshotManifest(w.coll.id, a.id, s.id)), layout.snapshotManifest(w.coll.id, b.id, s4.id)])
      expect(b.segmentCount).toBe(4)
    })

    it('rewrites the manifest of a segment that gained deltalogs or an index', async () => {
      const a = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
      await w.manager.catalog.addDeltalogs(w.segs[0].id, [{ fieldId: w.coll.schema.fields[0].fieldId, files: [{ key: 'files/more-deletes', size: 4 }] }])
      await w.manager.catalog.addSegmentIndex(w.segs[2].id, { indexName: 'vec_idx', files: [{ key: 'files/late-index', size: 9 }] })
      const b = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
      const meta = (await readerStore(w.manager, w.stores.meta, w.stores.objects).load('b')).metadata
      expect(meta.manifests).toEqual([
        layout.snapshotManifest(w.coll.id, b.id, w.segs[0].id),
        layout.snapshotManifest(w.coll.id, a.id, w.segs[1].id),
        layout.snapshotManifest(w.coll.id, b.id, w.segs[2].id),
      ])
      const segments = []
      for await (const s of (await readerStore(w.manager, w.stores.meta, w.stores.objects).load('b')).segments()) segments.push(s)
      expect(segments[0].deltalogs.flatMap((d) => d.files.map((f) => f.key))).toContain('files/more-deletes')
      // The first snapshot still sees its own, older manifest.
      const segmentsA = []
      for await (const s of (await readerStore(w.manager, w.stores.meta, w.stores.objects).load('a')).segments()) segmentsA.push(s)
      expect(segmentsA[0].deltalogs.flatMap((d) => d.files.map((f) => f.key))).not.toContain('files/more-deletes')
    })

    it('a manifest shared by a dropped snapshot and a failed create is deleted by whichever is marked last', async () => {
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
      await flushedSegment(w.manager, w.stores.objects, w.coll) // b writes one manifest and lists a's three
      const { objects } = w.stores
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
        const creating = w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
        await b.inside // b is pending and lists a's manifests
        const dropping = w.manager.dropSnapshot('a')
        await a.inside // a is marked deleting; it kept its manifests because b listed them
        b.open() // b fails; its cleanup is marked after a's, so it deletes them
        await expect(creating).rejects.toThrow(/injected/)
        a.open()
        await dropping
      } finally {
        objects.put = put
        objects.delete = del
      }
      expect(await snapshotRecords(w.stores.meta)).toEqual([])
      expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
      expect(await objectKeys(w.stores.objects, 'snapshots/')).toEqual([])
    })

    it('drop keeps manifests another snapshot lists, and removes the rest', async () => {
      const a = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
      await flushedSegment(w.manager, w.stores.objects, w.coll)
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
      await w.manager.dropSnapshot('a')
      expect((await objectKeys(w.stores.objects, 'snapshots/')).filter((k) => k.includes(`/manifests/${a.id}/`))).toHaveLength(3)
      expect(await w.stores.objects.head(layout.snapshotMetadata(w.coll.id, a.id))).toBeUndefined()
      expect(await w.manager.verifySnapshot('b')).toMatchObject({ ok: true, missing: [], corrupt: [] })
      expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
      // A third snapshot still reuses a's manifests (b keeps them alive).
      const before = (await objectKeys(w.stores.objects, 'snapshots/')).length
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'c' })
      expect((await objectKeys(w.stores.objects, 'snapshots/')).length).toBe(before + 2) // metadata and list only
      await w.manager.dropSnapshot('b')
      await w.manager.dropSnapshot('c')
      expect(await objectKeys(w.stores.objects, 'snapshots/')).toEqual([])
      expect(await snapshotEntries(w.stores.meta)).toEqual([])
    })
  })

  describe('recovery', () => {
    it('open() removes pending snapshots and finishes deleting ones', async () => {
      const keep = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'keep' })
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'half-dropped' })
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'half-made' })
      const records = await snapshotRecords(w.stores.meta)
      const dropped = records.find((r) => r.name === 'half-dropped')!
      const made = records.find((r) => r.name === 'half-made')!
      await w.manager.close()
      // Rewind the records as a crash would leave them.
      await w.stores.meta.open()
      await w.stores.meta.batch([
        { type: 'put', key: keys.snapshot(dropped.id), value: JSON.stringify({ ...dropped, state: 'deleting', deleteKeys: [dropped.metadataKey] }) },
        { type: 'put', key: keys.snapshot(made.id), value: JSON.stringify({ ...made, state: 'pending' }) },
      ])
      await w.stores.meta.close()
      w.manager = await openManager(w.stores.meta, w.stores.objects, { now: w.clock.now })
      expect(await w.manager.listSnapshots()).toEqual([keep])
      expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
      expect((await w.manager.verifySnapshot('keep')).ok).toBe(true)
    })
  })
})
