import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { layout } from '../../src/storage/layout.js'
import { CountingObjectStore } from '../helpers/crash-store.js'
import { flushedSegment, objectKeys, openManager, seedCollection, snapshotProblems } from './env.js'

/** The S3 path: the same lifecycle over S3ObjectStore on a local s3rver. */

const ready = existsSync(new URL('../helpers/s3rver.ts', import.meta.url)) && existsSync(new URL('../../src/storage/s3-object-store.ts', import.meta.url))

describe.skipIf(!ready)('snapshots on memory + s3 (s3rver)', () => {
  let server: { client: unknown; bucket: string; stop(): Promise<void> }
  let objects: CountingObjectStore
  const meta = new MemoryMetaStore()
  let manager: SnapshotManager

  beforeAll(async () => {
    const { startS3rver } = (await import('../helpers/s3rver.js')) as { startS3rver(): Promise<typeof server> }
    const { S3ObjectStore } = (await import('../../src/storage/s3-object-store.js')) as {
      S3ObjectStore: new (o: { client: unknown; bucket: string; prefix?: string }) => ObjectStore
    }
    server = await startS3rver()
    objects = new CountingObjectStore(new S3ObjectStore({ client: server.client, bucket: server.bucket, prefix: 'vecsnap-test' }))
    manager = await openManager(meta, objects)
  })

  afterAll(async () => {
    await manager?.close()
    await server?.stop()
  })

  it('creates, reuses manifests, describes, verifies and drops', async () => {
    const coll = await seedCollection(manager, 'docs')
    const segs = [await flushedSegment(manager, objects, coll), await flushedSegment(manager, objects, coll)]
    const a = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'a' })
    expect(a).toMatchObject({ segmentCount: 2, state: 'committed' })
    expect(await objectKeys(objects, 'snapshots/')).toEqual(
      [layout.snapshotMetadata(coll.id, a.id), layout.snapshotList(coll.id, a.id), ...segs.map((s) => layout.snapshotManifest(coll.id, a.id, s.id))].sort(),
    )
    const s3 = await flushedSegment(manager, objects, coll)
    objects.reset()
    const b = await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'b' })
    expect(objects.putKeys.filter((k) => k.endsWith('.avro'))).toEqual([layout.snapshotManifest(coll.id, b.id, s3.id)])
    const described = await manager.describeSnapshot('b', { includeCollectionInfo: true })
    expect(described.collection?.schema.fields).toHaveLength(4)
    expect(described.indexes?.map((i) => i.name)).toEqual(['vec_idx'])
    expect(await manager.verifySnapshot('b')).toMatchObject({ ok: true, missing: [], corrupt: [] })

    await objects.delete([segs[1].binlogs[0].files[0].key])
    expect((await manager.verifySnapshot('a')).missing).toEqual([segs[1].binlogs[0].files[0].key])

    await manager.dropSnapshot('a')
    expect(await manager.verifySnapshot('b')).toMatchObject({ missing: [segs[1].binlogs[0].files[0].key] })
    expect(await snapshotProblems(meta, objects)).toEqual([])
    await manager.dropSnapshot('b')
    expect(await objectKeys(objects, 'snapshots/')).toEqual([])
  })
})
