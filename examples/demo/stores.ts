import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { FsObjectStore, LevelMetaStore } from '../../src/index.js'
import type { MetaStore, ObjectStore } from '../../src/index.js'

/** The stores the demo runs on, and how to stop what it started. */
export interface DemoStores {
  meta: MetaStore
  objects: ObjectStore
  /** One line saying where the data lives. */
  where: string
  /** Stops the in-process S3 server, if any. */
  stop(): Promise<void>
}

/** LevelDB metadata at `<dir>/meta` and objects at `<dir>/objects`: the layout `vecsnap --data <dir>` reads. */
export async function fsStores(dir: string): Promise<DemoStores> {
  await mkdir(dir, { recursive: true })
  return {
    meta: new LevelMetaStore({ location: join(dir, 'meta') }),
    objects: new FsObjectStore({ root: join(dir, 'objects') }),
    where: `LevelDB ${join(dir, 'meta')} + directory ${join(dir, 'objects')}`,
    stop: async () => undefined,
  }
}

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>
  close(): Promise<void>
}

/**
 * LevelDB metadata at `<dir>/meta`, objects in a bucket of s3rver (a local
 * S3-compatible server) started in this process on 127.0.0.1, on a free port, storing
 * under `<dir>/s3rver`.
 */
export async function s3Stores(dir: string): Promise<DemoStores> {
  await mkdir(join(dir, 's3rver'), { recursive: true })
  const bucket = 'vecsnap-demo'
  // s3rver ships no type declarations: import it untyped.
  const { default: S3rver } = (await import('s3rver' as string)) as { default: new (o: Record<string, unknown>) => S3rverInstance }
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(dir, 's3rver'),
    configureBuckets: [{ name: bucket }],
  })
  const { port } = await server.run()
  const endpoint = `http://127.0.0.1:${port}`
  const [{ S3Client }, { S3ObjectStore }] = await Promise.all([import('@aws-sdk/client-s3'), import('../../src/s3.js')])
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    // s3rver's fixed development credentials; not a secret.
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  })
  return {
    meta: new LevelMetaStore({ location: join(dir, 'meta') }),
    objects: new S3ObjectStore({ client, bucket, prefix: 'demo' }),
    where: `LevelDB ${join(dir, 'meta')} + s3rver ${endpoint}/${bucket}/demo`,
    async stop() {
      client.destroy()
      await server.close()
    },
  }
}
