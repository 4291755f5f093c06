/**
 * The multi-machine setup in code: `npm run example:multi-node`.
 *
 * Two SnapshotManagers stand for two processes (two machines): both keep their metadata in
 * one etcd (`EtcdMetaStore`, started with no limit flags) and their files in one S3 bucket
 * (`S3ObjectStore` over s3rver, a local S3-compatible server). Machine A runs the tiny
 * vector database, writes and snapshots a collection; machine B restores the snapshot and
 * searches the copy. One of the two, elected through etcd, runs the background loops (the
 * restore checker and GC); the other serves API calls.
 *
 * It needs an `etcd` binary (Debian: `apt-get install etcd-server`); without one it says so
 * and exits 0. s3rver runs in this process. Everything listens on 127.0.0.1 only.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { S3Client } from '@aws-sdk/client-s3'
import { SnapshotManager } from '../src/index.js'
import { EtcdMetaStore } from '../src/etcd.js'
import { S3ObjectStore } from '../src/s3.js'
import { findEtcd, startEtcd } from '../test/helpers/etcd.js'
import { TinyVectorDb } from './tiny-vector-db/index.js'

if (findEtcd() === undefined) {
  console.log('multi-node example skipped: no etcd binary on PATH (Debian: apt-get install etcd-server)')
  process.exit(0)
}

const dir = await mkdtemp(join(tmpdir(), 'vecsnap-multi-node-'))
const etcd = await startEtcd()
if ('skip' in etcd) {
  console.log(`multi-node example skipped: ${etcd.skip}`)
  await rm(dir, { recursive: true, force: true })
  process.exit(0)
}
const { endpoint } = etcd
// s3rver ships no type declarations: import it untyped.
const { default: S3rver } = (await import('s3rver' as string)) as {
  default: new (o: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void> }
}
const s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(dir, 's3rver'), configureBuckets: [{ name: 'vectors' }] })
const { port } = await s3.run()
const client = new S3Client({
  endpoint: `http://127.0.0.1:${port}`,
  region: 'us-east-1',
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  // s3rver's fixed development credentials; not a secret.
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
})

/** One "machine": a manager over the shared etcd prefix and bucket prefix. */
async function machine(name: string): Promise<{ manager: SnapshotManager; db: TinyVectorDb }> {
  const objects = new S3ObjectStore({ client, bucket: 'vectors', prefix: 'prod' })
  const manager = new SnapshotManager({ meta: new EtcdMetaStore({ hosts: endpoint, prefix: 'prod/vecsnap/' }), objects, checkIntervalMs: 200 })
  manager.on('leadershipChanged', ({ leader }) => console.log(`  ${name} ${leader ? 'runs the loops' : 'no longer runs the loops'}`))
  manager.on('loopError', (err, { loop }) => console.error(`  ${name} ${loop} loop:`, err))
  await manager.open()
  return { manager, db: new TinyVectorDb({ catalog: manager.catalog, objects }) }
}

const a = await machine('machine A')
const b = await machine('machine B')
try {
  const dim = 16
  const rows = 2_000
  const vectors = new Float32Array(rows * dim).map((_, i) => Math.sin(i * 12.9898) * 0.5)
  const query = vectors.slice(0, dim)

  console.log('machine A: writes 2,000 vectors in 4 segments, indexed, and snapshots them')
  await a.db.createCollection('docs', { dim })
  await a.manager.catalog.createIndex('docs', { fieldName: 'vector', indexName: 'vector_idx', params: { index_type: 'HNSW', metric_type: 'L2' } })
  for (let s = 0; s < 4; s++) {
    const from = (s * rows) / 4
    const ids = Array.from({ length: rows / 4 }, (_, i) => from + i)
    await a.db.insert('docs', ids, vectors.subarray(from * dim, (from + rows / 4) * dim))
    await a.db.flush('docs')
  }
  const before = await a.db.search('docs', query, 5)
  const snapshot = await a.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'nightly' })
  console.log(`  snapshot ${snapshot.name}: ${snapshot.segmentCount} segments, ${snapshot.rowCount} rows`)

  console.log('machine B: restores the snapshot into docs_copy and searches it')
  const jobId = await b.manager.restoreSnapshot({ snapshotName: 'nightly', targetCollectionName: 'docs_copy' })
  const job = await b.manager.waitForRestore(jobId, { onProgress: (j) => console.log(`  restore ${j.progress}%`) })
  const after = await b.db.search('docs_copy', query, 5)
  const same = JSON.stringify(after, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) === JSON.stringify(before, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))
  console.log(`  ${job.state}: ${job.copiedSegments} segments copied server-side in ${job.timeCostMs} ms; same search results: ${same ? 'yes' : 'NO'}`)
  if (!same) process.exitCode = 1
} finally {
  await b.manager.close()
  await a.manager.close()
  client.destroy()
  await s3.close()
  await etcd.stop()
  await rm(dir, { recursive: true, force: true })
}
