import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { S3ObjectStore } from '../../src/storage/s3-object-store.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { TinyVectorDb } from '../../examples/tiny-vector-db/index.js'
import { randomVectors, rowsOf, sequentialIds } from '../../examples/demo/data.js'
import { startS3rver, type S3rverServer } from '../helpers/s3rver.js'
import { openManager } from '../snapshot/env.js'
import { CountingStore } from './helpers.js'

const DIM = 16
const K = 5

async function searchAll(db: TinyVectorDb, name: string, queries: Float32Array): Promise<unknown[]> {
  const out: unknown[] = []
  for (let q = 0; q < queries.length / DIM; q++) out.push(await db.search(name, rowsOf(queries, DIM, q, q + 1), K))
  return out
}

async function flushedKeys(manager: SnapshotManager, collection: string): Promise<Set<string>> {
  const keys = new Set<string>()
  for (const s of await manager.catalog.listSegments(collection, { states: ['flushed'] })) for (const { file } of segmentFiles(s)) keys.add(file.key)
  return keys
}

/**
 * SPEC section 14, end to end: the demo database (tiny-vector-db: binlogs, HNSW index
 * files, deletes) on LevelDB + a directory, exported to S3 (s3rver), imported by an empty
 * manager on other directories, restored and searched.
 */
describe('backup of the demo database to S3 and back on another machine', () => {
  let dir: string
  let s3: S3rverServer

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vecsnap-repo-e2e-'))
    s3 = await startS3rver()
  })
  afterAll(async () => {
    await s3?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('search on the imported and restored copy returns exactly the snapshot-time results; exports are incremental', async () => {
    const srcObjects = new FsObjectStore({ root: join(dir, 'a', 'objects') })
    const source = await openManager(new LevelMetaStore({ location: join(dir, 'a', 'meta') }), srcObjects)
    const repo = new CountingStore(new S3ObjectStore({ client: s3.client, bucket: s3.bucket, prefix: 'backups/vecsnap' }))
    let target: SnapshotManager | undefined
    try {
      const db = new TinyVectorDb({ catalog: source.catalog, objects: srcObjects })
      await db.createCollection('products', { dim: DIM })
      const vectors = randomVectors(1200, DIM, 7)
      for (let f = 0; f < 3; f++) {
        await db.insert('products', sequentialIds(1 + f * 400, 400), rowsOf(vectors, DIM, f * 400, (f + 1) * 400))
        await db.flush('products')
      }
      await db.createIndex('products', { M: 8 })
      const queries = randomVectors(8, DIM, 99)
      const atSnapshot = await searchAll(db, 'products', queries)
      await source.createSnapshot({ collectionName: 'products', snapshotName: 'nightly-1' })
      const keysAt1 = await flushedKeys(source, 'products')

      const first = await source.exportSnapshot('nightly-1', { to: repo })
      expect(first.copiedFiles).toBe(keysAt1.size)

      // Later writes: new rows flushed (new segments), deletes (new deltalogs).
      await db.insert('products', sequentialIds(5000, 300), randomVectors(300, DIM, 8))
      await db.flush('products')
      await db.delete('products', [1n, 2n, 3n])
      expect(await searchAll(db, 'products', queries)).not.toEqual(atSnapshot)

      repo.writes.length = 0
      const again = await source.exportSnapshot('nightly-1', { to: repo })
      expect(again).toMatchObject({ copiedFiles: 0, copiedBytes: 0, skippedFiles: keysAt1.size })
      expect(repo.writesUnder('backups/vecsnap/files/')).toEqual([])

      await source.createSnapshot({ collectionName: 'products', snapshotName: 'nightly-2' })
      const keysAt2 = await flushedKeys(source, 'products')
      const added = [...keysAt2].filter((k) => !keysAt1.has(k))
      expect(added.length).toBeGreaterThan(0)
      const second = await source.exportSnapshot('nightly-2', { to: repo })
      expect(second).toMatchObject({ copiedFiles: added.length, skippedFiles: keysAt2.size - added.length })

      // Another machine: other directories, an empty MetaStore, the repository only.
      const dstObjects = new FsObjectStore({ root: join(dir, 'b', 'objects') })
      target = await openManager(new LevelMetaStore({ location: join(dir, 'b', 'meta') }), dstObjects)
      const listed = await target.listRepositorySnapshots({ store: repo })
      expect(listed.map((s) => s.snapshotName)).toEqual(['nightly-1', 'nightly-2'])
      await target.importSnapshot({ from: repo, repositorySnapshotId: first.repositorySnapshotId, snapshotName: 'nightly-1' })
      const job = await target.restoreSnapshot({ snapshotName: 'nightly-1', targetCollectionName: 'products' })
      await target.waitForRestore(job)
      const copy = new TinyVectorDb({ catalog: target.catalog, objects: dstObjects })
      expect(await searchAll(copy, 'products', queries)).toEqual(atSnapshot)
      copy.close()
      db.close()
    } finally {
      await target?.close()
      await source.close()
    }
  }, 120_000)

  it('a repository in the manager own S3 store is filled with server-side copies (CopyObject), no upload', async () => {
    const { MemoryMetaStore } = await import('../../src/meta/memory-meta-store.js')
    const { seedCollection, flushedSegment } = await import('../snapshot/env.js')
    const own = new CountingStore(new S3ObjectStore({ client: s3.client, bucket: s3.bucket, prefix: 'same-store' }))
    const manager = await openManager(new MemoryMetaStore(), own)
    try {
      const coll = await seedCollection(manager, 'docs')
      await flushedSegment(manager, own, coll)
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
      own.writes.length = 0
      const report = await manager.exportSnapshot('s', { to: own, prefix: 'backup' })
      expect(report.copiedFiles).toBeGreaterThan(0)
      expect(own.copies).toHaveLength(report.copiedFiles)
      // Data files arrive by copy only; puts are the small objects (repository.json, metadata JSON, manifest, entry).
      const streamed = own.writes.filter((k) => k.startsWith('backup/files/') && !own.copies.some(([, to]) => to === k))
      expect(streamed).toHaveLength(2)
      expect(await manager.verifyRepository({ store: own, prefix: 'backup', readData: 'all' })).toMatchObject({ ok: true })
    } finally {
      await manager.close()
    }
  }, 60_000)
})
