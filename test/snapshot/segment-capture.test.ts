import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { keys } from '../../src/meta/keys.js'
import { segmentBytes } from '../../src/meta/segment-files.js'
import { prefixRange, type MetaRange, type MetaStore } from '../../src/meta/meta-store.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { captureSegment, readCapture } from '../../src/format/segment-capture.js'
import { encodeManifest } from '../../src/format/manifest-codec.js'
import type { SnapshotRecord } from '../../src/snapshot/snapshot-record.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import type { CollectionInfo, SegmentInfo } from '../../src/catalog-types.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { backends, code, flushedSegment, metaEntries, openManager, readRecordList, seedCollection, snapshotProblems, worldPerTest } from './env.js'

/** The snapshot's list, summed up, and the bytes of each manifest it lists, by segment. */
async function contents(meta: MetaStore, objects: ObjectStore, manager: SnapshotManager, name: string) {
  const info = await manager.describeSnapshot(name)
  const record = JSON.parse((await meta.get(keys.snapshot(info.id))) as string) as SnapshotRecord
  const list = await readRecordList(objects, record)
  const manifests = new Map<number, Buffer>()
  for (let i = 0; i < list.count; i++) manifests.set(list.segmentIds[i], Buffer.from((await objects.get(list.manifestKey(i))) as Uint8Array))
  const segmentIds = [...list.segmentIds]
  const buildIds = [...list.buildIds]
  const { rowCount, sizeBytes, segmentCount } = record
  return { summary: { segmentIds, buildIds, rowCount, sizeBytes, segmentCount, manifestSizes: [...list.manifestSizes], manifestHashes: list.hashes }, manifests }
}

/** Rewrites the value of every collection → segment entry of `collectionId`. */
async function rewriteEntries(meta: MetaStore, collectionId: number, value: (old: string) => string): Promise<void> {
  const entries = await metaEntries(meta, keys.collectionSegmentPrefix(collectionId))
  await meta.batch(entries.map(([key, old]) => ({ type: 'put', key, value: value(old) })))
}

describe.each(backends)('stored segment captures on $name', (backend) => {
  const w = worldPerTest(backend)

  it('give the manifests that encoding the segment records gives', async () => {
    await w.manager.catalog.allocSegment({ collection: 'docs' }) // growing: excluded
    await w.manager.catalog.dropSegment(w.segs[1].id) // dropped: excluded
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'from-captures' })
    const { summary, manifests } = await contents(w.stores.meta, w.stores.objects, w.manager, 'from-captures')
    expect(summary.segmentIds).toEqual([w.segs[0].id, w.segs[2].id])
    for (const seg of [w.segs[0], w.segs[2]]) {
      const record = await w.manager.catalog.getSegment(seg.id)
      const encoded = encodeManifest(captureSegment(record))
      expect(manifests.get(seg.id)).toEqual(Buffer.from(encoded.bytes))
      expect(summary.manifestHashes[summary.segmentIds.indexOf(seg.id)]).toBe(encoded.hash)
      expect(summary.manifestSizes[summary.segmentIds.indexOf(seg.id)]).toBe(encoded.bytes.byteLength)
    }
    expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
  })

  it('an entry that does not read back fails the create with CORRUPT, leaving nothing behind', async () => {
    await rewriteEntries(w.stores.meta, w.coll.id, (old) => old.slice(0, 20))
    await expect(w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })).rejects.toEqual(code('CORRUPT'))
    expect(await w.manager.listSnapshots()).toEqual([])
    expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
  })

  it('are what a create reads: it does not parse the segment records', async () => {
    // A capture that disagrees with its record (which never happens: both are written in
    // one batch) shows which of the two the create used.
    await rewriteEntries(w.stores.meta, w.coll.id, (old) => {
      const stored = JSON.parse(old) as { rows?: number }
      return JSON.stringify({ ...stored, rows: (stored.rows ?? 0) + 1000 })
    })
    const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    expect(info.rowCount).toBe(100 + 250 + 7 + 3 * 1000)
  })

  it('are not used for a segment holding files of a dropped index (its manifest leaves them out)', async () => {
    const before = readCapture((await w.stores.meta.get(keys.collectionSegment(w.coll.id, w.segs[0].id))) as string)
    expect(before?.flushed?.indexIds).toHaveLength(1)
    await w.manager.catalog.dropIndex('docs', 'vec_idx')
    const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    const { summary } = await contents(w.stores.meta, w.stores.objects, w.manager, 's')
    const dropped = w.segs.flatMap((s) => s.indexes)
    expect(dropped).toHaveLength(2)
    for (const ix of dropped) expect(summary.buildIds).not.toContain(ix.buildId)
    const indexBytes = dropped.reduce((n, ix) => n + ix.files.reduce((m, f) => m + f.size, 0), 0)
    expect(info.sizeBytes).toBe(w.segs.reduce((n, s) => n + segmentBytes(s), 0) - indexBytes)
  })
})

describe('the pin across processes (shared conditional batches)', () => {
  /**
   * Two managers over one shared map (as two processes over etcd). `a`'s create stops just
   * before its pin batch (phase 1) until `between` has run on `b`; the scans of the
   * collection's segment index that `a` made are counted.
   */
  async function raceCreate(prepare: (a: SnapshotManager, objects: ObjectStore, coll: CollectionInfo) => Promise<number>, between: (b: SnapshotManager, segmentId: number, coll: CollectionInfo) => Promise<void>) {
    const dir = await mkdtemp(join(tmpdir(), 'vecsnap-capture-'))
    const data = new Map<string, string>()
    let gate: { reached: () => void; released: Promise<void> } | undefined
    const metaA = new MapMetaStore({
      data,
      async gate(ops) {
        // The create's pin batch: the one that bumps the snapshot-set version.
        if (gate === undefined || !ops.some((op) => op.key.startsWith('s/coll-snap-ver/'))) return
        const g = gate
        gate = undefined
        g.reached()
        await g.released
      },
    })
    let scans = 0
    let segmentPrefix = ''
    const iterate = metaA.iterate.bind(metaA)
    metaA.iterate = (range?: MetaRange, o?) => {
      if (segmentPrefix !== '' && range?.gte === segmentPrefix) scans++
      return iterate(range, o)
    }
    const objects = new FsObjectStore({ root: join(dir, 'objects') })
    const a = await openManager(metaA, objects)
    const b = await openManager(new MapMetaStore({ data }), objects)
    try {
      const coll = await seedCollection(a, 'docs')
      segmentPrefix = prefixRange(keys.collectionSegmentPrefix(coll.id)).gte as string
      const segmentId = await prepare(a, objects, coll)
      let reached!: () => void
      const atGate = new Promise<void>((r) => (reached = r))
      let release!: () => void
      gate = { reached, released: new Promise<void>((r) => (release = r)) }
      scans = 0
      const conflictsBefore = metaA.conflicts
      const creating = a.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
      // A scanned the segments and is about to pin them (a create that ends first fails the test instead of hanging it).
      await Promise.race([atGate, creating.then(() => Promise.reject(new Error('the create ended before its pin batch')))])
      await between(b, segmentId, coll)
      release()
      const info = await creating
      const record = JSON.parse(data.get(keys.snapshot(info.id)) as string) as SnapshotRecord
      const list = await readRecordList(objects, record)
      return { info, list, conflicts: metaA.conflicts - conflictsBefore, scans, segment: await a.catalog.getSegment(segmentId) }
    } finally {
      await a.close()
      await b.close()
      await rm(dir, { recursive: true, force: true })
    }
  }

  it('a first index build on a captured segment (no drop) neither conflicts nor rescans: the snapshot has the segment as scanned', async () => {
    const { info, list, conflicts, scans, segment } = await raceCreate(
      async (a, objects, coll) => (await flushedSegment(a, objects, coll, { indexes: false })).id,
      async (b, segmentId) => {
        await b.catalog.addSegmentIndex(segmentId, { indexName: 'vec_idx', files: [{ key: `files/index_files/x/${segmentId}/HNSW_0`, size: 128 }] })
      },
    )
    expect({ conflicts, scans }).toEqual({ conflicts: 0, scans: 1 })
    expect([...list.buildIds]).toEqual([])
    expect(info.sizeBytes).toBe(segmentBytes({ ...segment, indexes: [] }))
  })

  it('a growing segment the other process flushes, with deltalogs added to a captured one: no rescan', async () => {
    let flushed!: SegmentInfo
    const { info, list, conflicts, scans } = await raceCreate(
      async (a, objects, coll) => {
        flushed = await flushedSegment(a, objects, coll, { indexes: false })
        return (await a.catalog.allocSegment({ collection: coll.name })).id
      },
      async (b, segmentId, coll) => {
        await b.catalog.flushSegment(segmentId, { numRows: 5, binlogs: [{ fieldId: 100, files: [{ key: `files/insert_log/x/${segmentId}/1`, size: 40 }] }] })
        await b.catalog.addDeltalogs(flushed.id, [{ fieldId: coll.schema.fields[0].fieldId, files: [{ key: 'files/late-deletes', size: 3 }] }])
      },
    )
    expect({ conflicts, scans }).toEqual({ conflicts: 0, scans: 1 })
    expect([...list.segmentIds]).toEqual([flushed.id])
    expect(info).toMatchObject({ segmentCount: 1, rowCount: flushed.numRows, sizeBytes: segmentBytes(flushed) })
  })

  it('a drop of a segment it did not capture moves the epoch: the commit runs again without a rescan', async () => {
    let flushed!: SegmentInfo
    const { list, conflicts, scans } = await raceCreate(
      async (a, objects, coll) => {
        flushed = await flushedSegment(a, objects, coll, { indexes: false })
        return (await a.catalog.allocSegment({ collection: coll.name })).id
      },
      async (b, segmentId) => {
        await b.catalog.dropSegment(segmentId)
      },
    )
    expect({ conflicts, scans }).toEqual({ conflicts: 1, scans: 1 })
    expect([...list.segmentIds]).toEqual([flushed.id])
  })

  it('a compaction of captured segments: the commit conflicts and the create scans again, pinning the result only', async () => {
    let sources!: SegmentInfo[]
    let result!: SegmentInfo
    const { list, conflicts, scans } = await raceCreate(
      async (a, objects, coll) => {
        sources = [await flushedSegment(a, objects, coll, { indexes: false }), await flushedSegment(a, objects, coll, { indexes: false })]
        return sources[0].id
      },
      async (b, _segmentId, coll) => {
        result = await b.catalog.compact({
          collection: coll.name,
          sources: sources.map((s) => s.id),
          result: { numRows: 10, binlogs: [{ fieldId: 100, files: [{ key: 'files/compacted/1', size: 50 }] }] },
        })
      },
    )
    expect({ conflicts, scans }).toEqual({ conflicts: 1, scans: 2 })
    expect([...list.segmentIds]).toEqual([result.id])
  })

  it('a build that replaces one on a captured segment: the create scans again and pins the new build', async () => {
    const { list, conflicts, scans, segment } = await raceCreate(
      async (a, objects, coll) => (await flushedSegment(a, objects, coll)).id,
      async (b, segmentId) => {
        await b.catalog.addSegmentIndex(segmentId, { indexName: 'vec_idx', files: [{ key: `files/index_files/y/${segmentId}/HNSW_1`, size: 64 }] })
      },
    )
    expect({ conflicts, scans }).toEqual({ conflicts: 1, scans: 2 })
    expect([...list.buildIds]).toContain(segment.indexes[0].buildId)
  })
})
