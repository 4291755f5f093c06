import { accessSync, constants } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { s3rverClient } from './s3rver-client.js'

/** The parts of s3rver 3.x used here (it ships no type declarations). */
interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>
  close(): Promise<void>
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance

const require = createRequire(import.meta.url)
const S3rver = require('s3rver') as S3rverClass

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES ('des', i.e. DES-CBC),
 * which OpenSSL 3 (Node >= 17) no longer provides, so every listing past 1000 keys fails
 * with InternalError. 3DES with three equal keys is the same cipher; route 'des' there.
 * s3rver runs in this process and calls `crypto.createCipheriv` through the CommonJS
 * module object, so patching that object is enough; other algorithms are untouched.
 */
function patchDesForS3rver(): void {
  const crypto = require('node:crypto') as typeof import('node:crypto') & { __vecsnapDesPatched?: boolean }
  if (crypto.__vecsnapDesPatched) return
  const tripled = (key: unknown) => Buffer.concat([key as Buffer, key as Buffer, key as Buffer])
  const { createCipheriv, createDecipheriv } = crypto
  const patched = {
    createCipheriv: (algorithm: string, key: unknown, iv: unknown, options?: unknown) =>
      algorithm === 'des' ? createCipheriv('des-ede3-cbc', tripled(key), iv as Buffer) : (createCipheriv as (...a: unknown[]) => unknown)(algorithm, key, iv, options),
    createDecipheriv: (algorithm: string, key: unknown, iv: unknown, options?: unknown) =>
      algorithm === 'des' ? createDecipheriv('des-ede3-cbc', tripled(key), iv as Buffer) : (createDecipheriv as (...a: unknown[]) => unknown)(algorithm, key, iv, options),
  }
  Object.assign(crypto, patched, { __vecsnapDesPatched: true })
}

/** A running in-process s3rver started by {@link startS3rver}. */
export interface S3rverServer {
  /** A client for it (path-style, checksums only where required). */
  client: S3Client
  /** A bucket that exists, `vecsnap-test`. */
  bucket: string
  /** `http://127.0.0.1:<port>`. */
  endpoint: string
  /** Creates another empty bucket and returns its name. */
  createBucket(): Promise<string>
  /** Stops the server, destroys the client and removes the server's directory. */
  stop(): Promise<void>
}

let bucketSeq = 0

/** s3rver writes two files per object: keep them in memory (tmpfs) where the system has one. */
function serverParentDir(): string {
  try {
    accessSync('/dev/shm', constants.W_OK)
    return '/dev/shm'
  } catch {
    return tmpdir()
  }
}

/**
 * Starts s3rver in this process on a free port of 127.0.0.1, over a temporary directory
 * (on /dev/shm where available), with the bucket `vecsnap-test`.
 *
 * @example
 * const s3 = await startS3rver()
 * const objects = new S3ObjectStore({ client: s3.client, bucket: s3.bucket, prefix: 'test' })
 * // …
 * await s3.stop()
 */
export async function startS3rver(): Promise<S3rverServer> {
  patchDesForS3rver()
  const directory = await mkdtemp(join(serverParentDir(), 'vecsnap-s3rver-'))
  const bucket = 'vecsnap-test'
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] })
  let port: number
  try {
    port = (await server.run()).port
  } catch (err) {
    await rm(directory, { recursive: true, force: true })
    throw err
  }
  const endpoint = `http://127.0.0.1:${port}`
  const client = s3rverClient(endpoint)
  let stopped = false
  return {
    client,
    bucket,
    endpoint,
    async createBucket() {
      const name = `vecsnap-test-${process.pid}-${++bucketSeq}`
      await client.send(new CreateBucketCommand({ Bucket: name }))
      return name
    },
    async stop() {
      if (stopped) return
      stopped = true
      client.destroy()
      await server.close().catch(() => undefined)
      await rm(directory, { recursive: true, force: true })
    },
  }
}
