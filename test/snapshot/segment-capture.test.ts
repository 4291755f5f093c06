import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { keys } from '../../src/meta/keys.js'
import { segmentBytes } from '../../src/meta/segment-files.js'
import type { MetaStore } from '../../src/meta/meta-store.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { CAPTURE_FORMAT, readCapture } from '../../src/snapshot/segment-capture.js'
import type { SnapshotRecord } from '../../src/snapshot/snapshot-record.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import type { CollectionInfo, SegmentInfo } from '../../src/meta/catalog-types.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { backends, flushedSegment, metaEntries, objectKeys, openManager, seedCollection, snapshotProblems, worldPerTest } from './env.js'

/** The snapshot's record, and the bytes of each manifest it lists, by segment. */
async function contents(meta: MetaStore, objects: ObjectStore, manager: SnapshotManager, name: string) {
  const info = await manager.describeSnapshot(name)
  const record = JSON.parse((await meta.get(keys.snapshot(info.id))) as string) as SnapshotRecord
  const manifests = new Map<number, Buffer>()
  for (let i = 0; i < record.segmentIds.length; i++) manifests.set(record.segmentIds[i], Buffer.from((await objects.get(record.manifestKeys[i])) as Uint8Array))
  const { segmentIds, buildIds, rowCount, sizeBytes, segmentCount, manifestSizes, manifestHashes } = record
  return { summary: { segmentIds, buildIds, rowCount, sizeBytes, segmentCount, manifestSizes, manifestHashes }, manifests }
}

/** Rewrites the value of every collection → segment entry of `collectionId` (from `from`, if given, instead of the current values). */
async function rewriteEntries(meta: MetaStore, collectionId: number, value: (old: string) => string, from?: [string, string][]): Promise<void> {
  const entries = from ?? (await metaEntries(meta, keys.collectionSegmentPrefix(collectionId)))
  await meta.batch(entries.map(([key, old]) => ({ type: 'put', key, value: value(old) })))
}

describe.each(backends)('stored segment captures on $name', (backend) => {
  const w = worldPerTest(backend)

  it('give the same snapshot as reading and encoding the segment records', async () => {
    await w.manager.catalog.allocSegment({ collection: 'docs' }) // growing: excluded either way
    await w.manager.catalog.dropSegment(w.segs[1].id) // dropped: excluded either way
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'from-captures' })
    const fromCaptures = await contents(w.stores.meta, w.stores.objects, w.manager, 'from-captures')
    expect(fromCaptures.summary.segmentIds).toEqual([w.segs[0].id, w.segs[2].id])
    // Without an earlier snapshot to reuse from, the next create writes every manifest again.
    await w.manager.dropSnapshot('from-captures')
    const stored = await metaEntries(w.stores.meta, keys.collectionSegmentPrefix(w.coll.id))

    for (const [name, value] of [
      ['from-records', () => ''], // as an older vecsnap left them
      ['from-other-format', (old: string) => JSON.stringify({ ...JSON.parse(old), v: CAPTURE_FORMAT + 1 })],
      ['from-damaged', (old: string) => old.slice(0, 20)],
    ] as const) {
      await rewriteEntries(w.stores.meta, w.coll.id, value, stored)
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: name })
      expect(await contents(w.stores.meta, w.stores.objects, w.manager, name)).toEqual(fromCaptures)
      await w.manager.dropSnapshot(name)
    }
    expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
  })

  it('give the manifests a snapshot made from the records wrote: a later snapshot reuses them all', async () => {
    const stored = await metaEntries(w.stores.meta, keys.collectionSegmentPrefix(w.coll.id))
    await rewriteEntries(w.stores.meta, w.coll.id, () => '', stored) // as an earlier version left them
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'from-records' })
    const first = await contents(w.stores.meta, w.stores.objects, w.manager, 'from-records')
    await rewriteEntries(w.stores.meta, w.coll.id, (v) => v, stored)
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'from-captures' })
    const info = await w.manager.describeSnapshot('from-captures')
    const record = JSON.parse((await w.stores.meta.get(keys.snapshot(info.id))) as string) as SnapshotRecord
    // Every manifest is the first snapshot's: the second wrote none.
    expect(record.manifestKeys.every((k) => !k.includes(`/manifests/${info.id}/`))).toBe(true)
    expect(await objectKeys(w.stores.objects, `snapshots/${w.coll.id}/manifests/${info.id}/`)).toEqual([])
    expect((await contents(w.stores.meta, w.stores.objects, w.manager, 'from-captures')).summary).toEqual(first.summary)
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

describe('stored segment captures across processes (shared conditional batches)', () => {
  /**
   * Two managers over one shared map (as two processes over etcd). `a`'s first create
   * stops before committing its pins (its phase 1 batch) until `between` has run on `b`.
   */
  async function raceCreate(prepare: (a: SnapshotManager, objects: ObjectStore, data: Map<string, string>, coll: CollectionInfo) => Promise<number>, between: (b: SnapshotManager, segmentId: number) => Promise<void>) {
    const dir = await mkdtemp(join(tmpdir(), 'vecsnap-capture-'))
    const data = new Map<string, string>()
    let gate: { reached: () => void; released: Promise<void> } | undefined
    const metaA = new MapMetaStore({
      data,
      async gate(ops) {
        // The create's phase 1 batch: the one that writes the reference index.
        if (gate === undefined || !ops.some((op) => op.key.startsWith(keys.segmentRefAllPrefix))) return
        const g = gate
        gate = undefined
        g.reached()
        await g.released
      },
    })
    const objects = new FsObjectStore({ root: join(dir, 'objects') })
    const a = await openManager(metaA, objects)
    const b = await openManager(new MapMetaStore({ data }), objects)
    try {
      const coll = await seedCollection(a, 'docs')
      const segmentId = await prepare(a, objects, data, coll)
      let reached!: () => void
      const atGate = new Promise<void>((r) => (reached = r))
      let release!: () => void
      gate = { reached, released: new Promise<void>((r) => (release = r)) }
      const creating = a.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
      // A read the segments and is about to commit its pins (a create that ends first fails the test instead of hanging it).
      await Promise.race([atGate, creating.then(() => Promise.reject(new Error('the create ended before its phase 1 batch')))])
      await between(b, segmentId)
      release()
      const info = await creating
      const record = JSON.parse(data.get(keys.snapshot(info.id)) as string) as SnapshotRecord
      return { info, record, conflicts: metaA.conflicts, segment: await a.catalog.getSegment(segmentId) }
    } finally {
      await a.close()
      await b.close()
      await rm(dir, { recursive: true, force: true })
    }
  }

  /** Another process builds an index on the segment: this changes it, not the collection's version. */
  const buildIndex = async (b: SnapshotManager, segmentId: number) => {
    await b.catalog.addSegmentIndex(segmentId, { indexName: 'vec_idx', files: [{ key: `files/index_files/x/${segmentId}/HNSW_0`, size: 128 }] })
  }

  it('a segment whose stored capture the create used', async () => {
    const { info, record, conflicts, segment } = await raceCreate(async (a, objects, _data, coll) => (await flushedSegment(a, objects, coll, { indexes: false })).id, buildIndex)
    expect(conflicts).toBe(1)
    expect(record.buildIds).toEqual([segment.indexes[0].buildId])
    expect(info.sizeBytes).toBe(segmentBytes(segment))
  })

  it('a segment whose record the create read (an entry an earlier version left empty)', async () => {
    const { info, record, conflicts, segment } = await raceCreate(async (a, objects, data, coll) => {
      const seg = await flushedSegment(a, objects, coll, { indexes: false })
      data.set(keys.collectionSegment(coll.id, seg.id), '')
      return seg.id
    }, buildIndex)
    expect(conflicts).toBe(1)
    expect(record.buildIds).toEqual([segment.indexes[0].buildId])
    expect(info.sizeBytes).toBe(segmentBytes(segment))
  })

  it('a growing segment the other process flushes', async () => {
    let flushed!: SegmentInfo
    const { info, record, conflicts, segment } = await raceCreate(
      async (a, objects, _data, coll) => {
        flushed = await flushedSegment(a, objects, coll, { indexes: false })
        return (await a.catalog.allocSegment({ collection: coll.name })).id
      },
      async (b, segmentId) => {
        await b.catalog.flushSegment(segmentId, { numRows: 5, binlogs: [{ fieldId: 100, files: [{ key: `files/insert_log/x/${segmentId}/1`, size: 40 }] }] })
      },
    )
    expect(conflicts).toBe(1)
    expect(record.segmentIds).toEqual([flushed.id, segment.id])
    expect(info).toMatchObject({ segmentCount: 2, rowCount: flushed.numRows + 5, sizeBytes: segmentBytes(flushed) + 40 })
  })
})
