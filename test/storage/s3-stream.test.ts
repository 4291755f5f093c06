import { Readable } from 'node:stream'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { describe, expect, it } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import { S3ObjectStore, type S3ObjectStoreOptions } from '../../src/storage/s3-object-store.js'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const bucket = 'bkt'
const code = (c: string) => expect.objectContaining({ code: c })

interface Call {
  name: string
  input: any
  signal: AbortSignal | undefined
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  if (body instanceof Uint8Array) return Buffer.from(body)
  const parts: Buffer[] = []
  for await (const chunk of body as AsyncIterable<Uint8Array>) parts.push(Buffer.from(chunk))
  return Buffer.concat(parts)
}

/**
 * An in-memory S3 with what streaming uses (PutObject, GetObject, multipart uploads) and
 * the client config the store reads. `holdParts` keeps UploadPart requests
 * pending until their abortSignal fires; `fail` injects errors.
 */
class FakeS3 {
  readonly objects = new Map<string, Buffer>()
  readonly uploads = new Map<string, { key: string; parts: Map<number, Buffer> }>()
  readonly calls: Call[] = []
  holdParts = false
  /** Resolves when a held UploadPart is waiting. */
  partHeld: Promise<void>
  #heldResolve!: () => void
  fail: (name: string, input: any) => unknown = () => undefined
  #seq = 0
  readonly config = {
    requestChecksumCalculation: async (): Promise<string> => 'WHEN_REQUIRED',
    endpoint: async () => ({ protocol: 'http:', hostname: '127.0.0.1', port: 9, path: '/' }),
    forcePathStyle: true,
  }

  constructor() {
    this.partHeld = new Promise((r) => (this.#heldResolve = r))
  }

  get client(): S3Client {
    return this as unknown as S3Client
  }

  named(name: string): Call[] {
    return this.calls.filter((c) => c.name === name)
  }

  async send(cmd: any, options?: { abortSignal?: AbortSignal }): Promise<any> {
    const name: string = cmd.constructor.name
    const input = cmd.input
    const signal = options?.abortSignal
    this.calls.push({ name, input, signal })
    await Promise.resolve()
    const aborted = () => Object.assign(new Error('Request aborted'), { name: 'AbortError' })
    if (signal?.aborted) throw aborted()
    const injected = this.fail(name, input)
    if (injected !== undefined) throw injected
    expect(input.Bucket).toBe(bucket)
    if (cmd instanceof PutObjectCommand) {
      const body = await bodyBytes(input.Body)
      if (input.ContentLength !== undefined) expect(body.byteLength).toBe(input.ContentLength)
      this.objects.set(input.Key, body)
      return { ETag: '"put"' }
    }
    if (cmd instanceof GetObjectCommand) {
      const o = this.objects.get(input.Key)
      if (o === undefined) throw new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: 'The specified key does not exist.' })
      return { Body: Readable.from([o.subarray(0, o.byteLength >> 1), o.subarray(o.byteLength >> 1)]), ContentLength: o.byteLength }
    }
    if (cmd instanceof CreateMultipartUploadCommand) {
      const UploadId = `upload-${++this.#seq}`
      this.uploads.set(UploadId, { key: input.Key, parts: new Map() })
      return { UploadId }
    }
    if (cmd instanceof UploadPartCommand) {
      const upload = this.uploads.get(input.UploadId)
      expect(upload, 'the upload exists').toBeDefined()
      const body = await bodyBytes(input.Body)
      if (this.holdParts) {
        this.#heldResolve()
        await new Promise<void>((_, reject) => signal?.addEventListener('abort', () => reject(aborted()), { once: true }))
      }
      upload!.parts.set(input.PartNumber, body)
      return { ETag: `"part-${input.PartNumber}"` }
    }
    if (cmd instanceof CompleteMultipartUploadCommand) {
      const upload = this.uploads.get(input.UploadId)!
      const parts = input.MultipartUpload.Parts as { PartNumber: number; ETag: string }[]
      parts.forEach((p, i) => expect(p).toMatchObject({ PartNumber: i + 1, ETag: `"part-${i + 1}"` }))
      this.objects.set(upload.key, Buffer.concat(parts.map((p) => upload.parts.get(p.PartNumber)!)))
      this.uploads.delete(input.UploadId)
      return {}
    }
    if (cmd instanceof AbortMultipartUploadCommand) {
      this.uploads.delete(input.UploadId)
      return {}
    }
    throw new Error(`fake S3 does not know ${name}`)
  }
}

function setup(options: Partial<S3ObjectStoreOptions> = {}) {
  const s3 = new FakeS3()
  const store = new S3ObjectStore({ client: s3.client, bucket, prefix: 'pre', uploadPartSizeBytes: 5 * MiB, ...options })
  return { s3, store }
}

/** `total` pseudo-random bytes in chunks of `chunk`, then `after()` (e.g. a throw). */
async function* generated(total: number, chunk = MiB, after?: () => void | Promise<void>): AsyncGenerator<Uint8Array> {
  let seed = 12345
  for (let at = 0; at < total; at += chunk) {
    const c = new Uint8Array(Math.min(chunk, total - at))
    for (let i = 0; i < c.length; i += 4096) c[i] = seed = (seed * 1103515245 + 12345) & 0xff
    yield c
  }
  await after?.()
}

describe('S3ObjectStore.putStream (fake client)', () => {
  it('uploads a body above the part size as a multipart upload of uploadPartSizeBytes parts', async () => {
    const { s3, store } = setup()
    const expected = await bodyBytes(generated(20 * MiB + 3))
    const info = await store.putStream('big', generated(20 * MiB + 3), { sizeBytes: 20 * MiB + 3 })
    expect(info).toMatchObject({ key: 'big', size: 20 * MiB + 3 })
    expect(s3.objects.get('pre/big')!.equals(expected)).toBe(true)
    const parts = s3.named('UploadPartCommand')
    expect(parts.map((c) => c.input.PartNumber).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5])
    expect(s3.named('CreateMultipartUploadCommand')).toHaveLength(1)
    expect(s3.named('CompleteMultipartUploadCommand')).toHaveLength(1)
    expect(s3.named('PutObjectCommand')).toHaveLength(0)
    expect(s3.named('AbortMultipartUploadCommand')).toHaveLength(0)
    expect(s3.uploads.size).toBe(0)
    for (const call of s3.calls) expect(call.signal, call.name).toBeInstanceOf(AbortSignal)
  })

  it('uploads a body up to the part size with one PutObject', async () => {
    const { s3, store } = setup()
    await store.putStream('small', generated(3 * MiB + 1, 64 * 1024))
    expect(s3.calls.map((c) => c.name)).toEqual(['PutObjectCommand'])
    expect(s3.objects.get('pre/small')!.byteLength).toBe(3 * MiB + 1)
  })

  it('raises the part size so that a body of the declared size fits in 10,000 parts, and aborts the upload when the body fails', async () => {
    const { s3, store } = setup()
    s3.holdParts = true
    const failure = new SnapshotError('CORRUPT', 'source changed')
    const err = await store
      .putStream('huge', generated(12 * MiB, MiB, async () => {
        await s3.partHeld
        throw failure
      }), { sizeBytes: 100 * GiB })
      .catch((e: unknown) => e)
    expect(err).toBe(failure)
    const parts = s3.named('UploadPartCommand')
    expect(parts).toHaveLength(1)
    expect(parts[0].input.Body.byteLength).toBe(Math.ceil((100 * GiB) / 10_000))
    expect(s3.named('AbortMultipartUploadCommand').map((c) => c.input.UploadId)).toEqual(s3.named('CreateMultipartUploadCommand').map(() => 'upload-1'))
    expect(s3.named('CompleteMultipartUploadCommand')).toHaveLength(0)
    expect(s3.uploads.size).toBe(0)
    expect(s3.objects.size).toBe(0)
  })

  it('cancels parts in flight and aborts the upload before rejecting ABORTED when the signal fires', async () => {
    const { s3, store } = setup()
    s3.holdParts = true
    const ac = new AbortController()
    const writing = store.putStream('held', generated(40 * MiB), { signal: ac.signal }).catch((e: unknown) => e)
    await s3.partHeld
    ac.abort()
    expect(await writing).toEqual(code('ABORTED'))
    const aborts = s3.named('AbortMultipartUploadCommand')
    expect(aborts).toHaveLength(1)
    // AbortMultipartUpload goes out without the fired signal, or it could not be sent.
    expect(aborts[0].signal?.aborted ?? false).toBe(false)
    expect(s3.uploads.size).toBe(0)
    expect(s3.objects.size).toBe(0)
  })

  it('rejects IO_ERROR with the S3 code and aborts the upload when a part fails', async () => {
    const { s3, store } = setup()
    s3.fail = (name, input) =>
      name === 'UploadPartCommand' && input.PartNumber === 2
        ? new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'Access Denied' })
        : undefined
    await expect(store.putStream('denied', generated(16 * MiB))).rejects.toMatchObject({ code: 'IO_ERROR', details: { s3Code: 'AccessDenied' } })
    expect(s3.named('AbortMultipartUploadCommand')).toHaveLength(1)
    expect(s3.uploads.size).toBe(0)
    expect(s3.objects.size).toBe(0)
  })

  it('rejects IO_ERROR when the body is longer or shorter than sizeBytes, and completes nothing', async () => {
    const { s3, store } = setup()
    await expect(store.putStream('short', generated(11 * MiB), { sizeBytes: 12 * MiB })).rejects.toMatchObject({ code: 'IO_ERROR', details: { sizeBytes: 12 * MiB, actualBytes: 11 * MiB } })
    await expect(store.putStream('long', generated(11 * MiB), { sizeBytes: 10 * MiB })).rejects.toMatchObject({ code: 'IO_ERROR' })
    await expect(store.putStream('small', generated(100), { sizeBytes: 99 })).rejects.toMatchObject({ code: 'IO_ERROR' })
    expect(s3.named('CompleteMultipartUploadCommand')).toHaveLength(0)
    expect(s3.uploads.size).toBe(0)
    expect(s3.objects.size).toBe(0)
  })

  it('sends a body of exactly one part as one PutObject, and of exactly two parts as two parts', async () => {
    const { s3, store } = setup()
    await store.putStream('one', generated(5 * MiB))
    expect(s3.calls.map((c) => c.name)).toEqual(['PutObjectCommand'])
    await store.putStream('two', generated(10 * MiB, 5 * MiB))
    expect(s3.named('UploadPartCommand').map((c) => c.input.Body.byteLength)).toEqual([5 * MiB, 5 * MiB])
    expect(s3.objects.get('pre/two')!.byteLength).toBe(10 * MiB)
  })

  it('reads no further ahead of the parts in flight than uploadQueueSize + 1 parts', async () => {
    const { s3, store } = setup({ uploadQueueSize: 2 })
    s3.holdParts = true
    let pulled = 0
    async function* body() {
      for (let i = 0; i < 100; i++) {
        pulled += MiB
        yield new Uint8Array(MiB)
      }
    }
    const ac = new AbortController()
    const writing = store.putStream('bounded', body(), { signal: ac.signal }).catch((e: unknown) => e)
    await s3.partHeld
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r))
    expect(pulled).toBeLessThanOrEqual(3 * 5 * MiB + MiB)
    expect(s3.named('UploadPartCommand')).toHaveLength(2)
    ac.abort()
    expect(await writing).toEqual(code('ABORTED'))
    expect(s3.uploads.size).toBe(0)
  })

  it('declares CRC32 checksums on the upload and completes with the parts\' checksums when the client adds them', async () => {
    const { s3, store } = setup()
    s3.config.requestChecksumCalculation = async () => 'WHEN_SUPPORTED'
    const send = s3.send.bind(s3)
    s3.send = async (cmd: any, options?: any) => {
      const res = await send(cmd, options)
      return cmd instanceof UploadPartCommand ? { ...res, ChecksumCRC32: `crc-${cmd.input.PartNumber}` } : res
    }
    await store.putStream('summed', generated(11 * MiB))
    expect(s3.named('CreateMultipartUploadCommand')[0].input.ChecksumAlgorithm).toBe('CRC32')
    expect(s3.named('CompleteMultipartUploadCommand')[0].input.MultipartUpload.Parts.map((p: any) => p.ChecksumCRC32)).toEqual(['crc-1', 'crc-2', 'crc-3'])
  })

  it('releases the body (destroys a Readable) when the upload fails before reading all of it', async () => {
    const { s3, store } = setup()
    s3.fail = (name) => (name === 'CreateMultipartUploadCommand' ? new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'Access Denied' }) : undefined)
    const body = Readable.from(generated(40 * MiB))
    await expect(store.putStream('denied', body)).rejects.toMatchObject({ code: 'IO_ERROR' })
    await new Promise((r) => setImmediate(r))
    expect(body.destroyed).toBe(true)
  })

  it('rejects option values out of range with a TypeError', () => {
    const s3 = new FakeS3()
    expect(() => new S3ObjectStore({ client: s3.client, bucket, uploadPartSizeBytes: MiB })).toThrow(TypeError)
    expect(() => new S3ObjectStore({ client: s3.client, bucket, uploadPartSizeBytes: 6 * GiB })).toThrow(TypeError)
    expect(() => new S3ObjectStore({ client: s3.client, bucket, uploadQueueSize: 0 })).toThrow(TypeError)
  })
})

describe('S3ObjectStore.getStream (fake client)', () => {
  it('streams the GetObject body, and resolves undefined for an absent key', async () => {
    const { s3, store } = setup()
    s3.objects.set('pre/k', Buffer.from('hello world'))
    const parts: Buffer[] = []
    for await (const chunk of (await store.getStream('k'))!) parts.push(Buffer.from(chunk))
    expect(Buffer.concat(parts).toString()).toBe('hello world')
    expect(await store.getStream('absent')).toBeUndefined()
  })

  it('destroys a body being read when the signal fires', async () => {
    const { s3, store } = setup()
    let destroyed = false
    const body = new Readable({
      read() {
        // Never answers: a stalled connection.
      },
      destroy(err, cb) {
        destroyed = true
        cb(err)
      },
    })
    s3.send = async () => ({ Body: body })
    const ac = new AbortController()
    const stream = await store.getStream('k', { signal: ac.signal })
    const reading = (async () => {
      for await (const _ of stream!) return 'chunk'
      return 'end'
    })().catch((e: unknown) => e)
    ac.abort()
    expect(await reading).toEqual(code('ABORTED'))
    expect(destroyed).toBe(true)
  })
})
