import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EtcdMetaStore } from '../../src/etcd.js'
import type { CollectionInfo, SegmentInfo } from '../../src/catalog-types.js'
import { guardMetaStore } from '../../src/meta/guarded-meta-store.js'
import { keys } from '../../src/meta/keys.js'
import { bumpCollectionVersion, writeSegment } from '../../src/meta/records.js'
import { Transactor } from '../../src/meta/transaction.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { assertWithinLimits } from '../helpers/batch-limits.js'
import { startEtcd } from '../helpers/etcd.js'
import { seedDocsCollection } from '../helpers/seed.js'

/**
 * SPEC section 11 on a real etcd started with no limit flags (--max-txn-ops 128,
 * --max-request-bytes 1.5 MiB) and `EtcdMetaStore`'s defaults: a 2,000-segment collection,
 * each segment with a binlog and an index build, through create, compact, a second create
 * that reuses manifests, list, verify, restore, dropCollection of the source, GC, drop of
 * both snapshots, GC, and drop of the restored collection. Every batch is also checked
 * against vecsnap's own limits (64 operations, 64 expectations, 256 KiB).
 */

const SEGMENTS = 2_000
/** Segments written per seeding transaction (two writes each). */
const SEED_CHUNK = 25

const server = await startEtcd()

if ('skip' in server) {
  console.warn(`etcd scale test skipped: ${server.skip}`)
  describe.skip(`2,000 segments on a stock etcd (skipped: ${server.skip})`, () => {
    it('runs', () => undefined)
  })
} else {
  describe('2,000 segments on a stock etcd', () => {
    let dir: string
    let meta: EtcdMetaStore
    let objects: FsObjectStore
    let manager: SnapshotManager
    let coll: CollectionInfo
    let segments: SegmentInfo[]
    let batches = 0

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'vecsnap-etcd-scale-'))
      meta = new EtcdMetaStore({ hosts: server.endpoint, prefix: 'scale/' })
      const batch = meta.batch.bind(meta)
      meta.batch = async (operations, options) => {
        assertWithinLimits(operations, options)
        batches++
        return batch(operations, options)
      }
      objects = new FsObjectStore({ root: join(dir, 'objects') })
      manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0, dropGraceMs: 0, checkIntervalMs: 50 })
      await manager.open()
      coll = await seedDocsCollection(manager.catalog, 'big', { dim: 4 })
      segments = await seed(coll)
    }, 240_000)

    afterAll(async () => {
      await manager?.close()
      await server.stop()
      if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    })

    /** Writes SEGMENTS flushed segments (a binlog and an index build each) the way the catalog does, in bounded transactions. */
    async function seed(c: CollectionInfo): Promise<SegmentInfo[]> {
      const base = await manager.catalog.allocIds(2 * SEGMENTS)
      const [index] = await manager.catalog.listIndexes(c.name)
      const out: SegmentInfo[] = []
      for (let i = 0; i < SEGMENTS; i++) {
        const id = base + 2 * i
        const buildId = id + 1
        const partitionId = c.partitions[0].id
        const binlog = manager.catalog.layout.insertLog({ collectionId: c.id, partitionId, segmentId: id, fieldId: 100, logId: 1 })
        const indexFile = manager.catalog.layout.indexFile({ buildId, version: 1, partitionId, segmentId: id, fileName: 'HNSW' })
        out.push({
          id,
          collectionId: c.id,
          partitionId,
          channel: c.channels[0],
          state: 'flushed',
          level: 'L1',
          numRows: 10,
          binlogs: [{ fieldId: 100, files: [{ key: binlog, size: 16, logId: 1 }] }],
          statslogs: [],
          deltalogs: [],
          bm25logs: [],
          indexes: [{ indexId: index.id, buildId, files: [{ key: indexFile, size: 8 }] }],
          textIndexes: [],
          jsonKeyIndexes: [],
          createdAt: Date.now(),
        })
      }
      let next = 0
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < out.length) {
            const s = out[next++]
            await objects.put(s.binlogs[0].files[0].key, Buffer.alloc(16, s.id % 251))
            await objects.put(s.indexes[0].files[0].key, Buffer.alloc(8, s.id % 241))
          }
        }),
      )
      const transactor = new Transactor(guardMetaStore(meta))
      for (let i = 0; i < out.length; i += SEED_CHUNK) {
        await transactor.run(async (tx) => {
          for (const s of out.slice(i, i + SEED_CHUNK)) writeSegment(tx, s)
          await bumpCollectionVersion(tx, c.id)
        })
      }
      return out
    }

    it('create, compact, create again, list, verify, restore, drop the source, GC, drop the snapshots, GC, drop the copy', async () => {
      // A create costs the same few batches whatever the segment count.
      let before = batches
      const s1 = await manager.createSnapshot({ collectionName: 'big', snapshotName: 's1' })
      expect(s1).toMatchObject({ segmentCount: SEGMENTS, rowCount: 10 * SEGMENTS, state: 'committed' })
      expect(batches - before).toBeLessThanOrEqual(4)
      const record = (await meta.get(keys.snapshot(s1.id))) as string
      expect(Buffer.byteLength(record)).toBeLessThanOrEqual(4096)

      const sources = segments.slice(0, 29).map((s) => s.id)
      const resultKey = 'files/compacted/big-1'
      await objects.put(resultKey, Buffer.alloc(30, 7))
      const result = await manager.catalog.compact({ collection: 'big', sources, result: { numRows: 300, binlogs: [{ fieldId: 100, files: [{ key: resultKey, size: 30 }] }] } })

      const s2 = await manager.createSnapshot({ collectionName: 'big', snapshotName: 's2' })
      expect(s2.segmentCount).toBe(SEGMENTS - 29 + 1)
      const own: string[] = []
      for await (const o of objects.list(`snapshots/${coll.id}/manifests/${s2.id}/`)) own.push(o.key)
      expect(own).toEqual([`snapshots/${coll.id}/manifests/${s2.id}/${result.id}.avro`]) // every other manifest is s1's

      expect((await manager.listSnapshots()).map((s) => s.name)).toEqual(['s1', 's2'])
      expect(await manager.verifySnapshot('s1')).toMatchObject({ ok: true, checkedFiles: 2 * SEGMENTS })
      expect(await manager.verifySnapshot('s2')).toMatchObject({ ok: true })

      const jobId = await manager.restoreSnapshot({ snapshotName: 's1', targetCollectionName: 'copy' })
      expect(await manager.waitForRestore(jobId)).toMatchObject({ state: 'completed', copiedSegments: SEGMENTS })
      const restored = await manager.catalog.listSegments('copy')
      expect(restored).toHaveLength(SEGMENTS)
      for (const s of restored.slice(0, 50)) {
        const source = segments[restored.indexOf(s)]
        expect(Buffer.from((await objects.get(s.binlogs[0].files[0].key)) as Uint8Array)).toEqual(Buffer.from((await objects.get(source.binlogs[0].files[0].key)) as Uint8Array))
      }

      before = batches
      await manager.catalog.dropCollection('big')
      expect(batches - before).toBe(1)
      // The snapshots pin every source file: GC deletes nothing (the result file is s2's).
      expect(await manager.runGc()).toMatchObject({ deletedObjects: 0 })
      expect(await manager.verifySnapshot('s1')).toMatchObject({ ok: true })
      expect(await manager.verifySnapshot('s2')).toMatchObject({ ok: true })

      before = batches
      await manager.dropSnapshot('s1')
      expect(batches - before).toBeLessThanOrEqual(2)
      await manager.dropSnapshot('s2')
      const gc = await manager.runGc()
      expect(gc.deletedObjects).toBe(2 * SEGMENTS + 1) // every source file and the compaction result
      let left = 0
      for await (const _ of objects.list(`snapshots/`)) left++
      expect(left).toBe(0)

      // The restored collection is whole and independent of the dropped snapshot.
      for (const s of restored.slice(0, 50)) expect(await objects.head(s.indexes[0].files[0].key)).toBeDefined()
      await manager.catalog.dropCollection('copy')
      expect(await manager.runGc()).toMatchObject({ deletedObjects: 2 * SEGMENTS })
      expect((await manager.runGc()).deletedObjects).toBe(0)
    }, 300_000)
  })
}
