import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchBucket,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { describe, expect, it } from 'vitest'
import { guardObjectStore } from '../../src/storage/guarded-object-store.js'
import { S3ObjectStore, type S3ObjectStoreOptions } from '../../src/storage/s3-object-store.js'
import { collect } from '../conformance/object-store.suite.js'

interface FakeObject {
  /** Absent for "virtual" objects that only have a size (multipart planning tests). */
  body?: Uint8Array
  size: number
  etag: string
}

interface Call {
  name: string
  input: any
  options: any
}

const GiB = 1024 ** 3
const bucket = 'bkt'
const enc = new TextEncoder()
const bytes = (s: string) => enc.encode(s)
const slowDown = () => new S3ServiceException({ name: 'SlowDown', $fault: 'server', $metadata: { httpStatusCode: 503 }, message: 'Please reduce your request rate.' })
const copyTooLarge = () => new S3ServiceException({ name: 'InvalidRequest', $fault: 'client', $metadata: { httpStatusCode: 400 }, message: 'The specified copy source is larger than the maximum allowable size for a copy source: 5368709120' })
const accessDenied = () => new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'Access Denied' })

/** An in-memory S3 behind `send(command)`, recording every call; `fail` injects errors. */
class FakeS3 {
  readonly objects = new Map<string, FakeObject>()
  readonly calls: Call[] = []
  readonly uploads = new Map<string, { key: string; parts: Map<number, { source: string; start: number; end: number; etag: string }> }>()
  pageSize = 1000
  fail: (name: string, input: any) => unknown = () => undefined
  #seq = 0

  set(key: string, body: Uint8Array | number): void {
    const etag = `"etag-${++this.#seq}"`
    this.objects.set(key, typeof body === 'number' ? { size: body, etag } : { body: body.slice(), size: body.byteLength, etag })
  }

  named(name: string): Call[] {
    return this.calls.filter((c) => c.name === name)
  }

  get client(): S3Client {
    return this as unknown as S3Client
  }

  async send(cmd: any, options?: any): Promise<any> {
    const name: string = cmd.constructor.name
    const input = cmd.input
    this.calls.push({ name, input, options })
    await Promise.resolve()
    if (options?.abortSignal?.aborted) throw Object.assign(new Error('Request aborted'), { name: 'AbortError' })
    const injected = this.fail(name, input)
    if (injected !== undefined) throw injected
    expect(input.Bucket).toBe(bucket)
    if (cmd instanceof PutObjectCommand) {
      this.set(input.Key, input.Body)
      return {}
    }
    if (cmd instanceof GetObjectCommand) {
      const o = this.#need(input.Key)
      return { Body: { transformToByteArray: async () => o.body!.slice() }, ContentLength: o.size }
    }
    if (cmd instanceof HeadObjectCommand) {
      const o = this.objects.get(input.Key)
      if (o === undefined) throw new NotFound({ $metadata: { httpStatusCode: 404 }, message: 'UnknownError' })
      return { ContentLength: o.size, LastModified: new Date(1_700_000_000_000), ETag: o.etag }
    }
    if (cmd instanceof ListObjectsV2Command) {
      const keys = [...this.objects.keys()].filter((k) => k.startsWith(input.Prefix ?? '')).sort()
      const start = input.ContinuationToken === undefined ? 0 : Number(input.ContinuationToken.slice('token-'.length))
      const page = keys.slice(start, start + this.pageSize)
      const truncated = start + this.pageSize < keys.length
      return {
        Contents: page.map((Key) => ({ Key, Size: this.objects.get(Key)!.size, LastModified: new Date(1_700_000_000_000) })),
        IsTruncated: truncated,
        NextContinuationToken: truncated ? `token-${start + this.pageSize}` : undefined,
      }
    }
    if (cmd instanceof CopyObjectCommand) {
      const src = this.#need(this.#source(input.CopySource))
      // What AWS answers for a CopyObject source above 5 GiB.
      if (src.size > 5 * GiB) throw copyTooLarge()
      this.set(input.Key, src.body ?? src.size)
      return { CopyObjectResult: { LastModified: new Date(1_700_000_000_000), ETag: '"copied"' } }
    }
    if (cmd instanceof CreateMultipartUploadCommand) {
      const UploadId = `upload-${++this.#seq}`
      this.uploads.set(UploadId, { key: input.Key, parts: new Map() })
      return { UploadId, Key: input.Key }
    }
    if (cmd instanceof UploadPartCopyCommand) {
      const upload = this.uploads.get(input.UploadId)!
      const source = this.#source(input.CopySource)
      const src = this.#need(source)
      if (input.CopySourceIfMatch !== undefined && input.CopySourceIfMatch !== src.etag) throw new S3ServiceException({ name: 'PreconditionFailed', $fault: 'client', $metadata: { httpStatusCode: 412 } })
      const [, a, b] = /^bytes=(\d+)-(\d+)$/.exec(input.CopySourceRange)!
      const [start, end] = [Number(a), Number(b)]
      expect(start).toBeLessThanOrEqual(end)
      expect(end).toBeLessThan(src.size)
      const etag = `"part-${input.PartNumber}"`
      upload.parts.set(input.PartNumber, { source, start, end, etag })
      return { CopyPartResult: { ETag: etag } }
    }
    if (cmd instanceof CompleteMultipartUploadCommand) {
      const upload = this.uploads.get(input.UploadId)!
      const parts = input.MultipartUpload.Parts as { PartNumber: number; ETag: string }[]
      parts.forEach((p, i) => {
        expect(p.PartNumber).toBe(i + 1)
        expect(p.ETag).toBe(upload.parts.get(p.PartNumber)!.etag)
      })
      const ranges = parts.map((p) => upload.parts.get(p.PartNumber)!)
      const src = this.#need(ranges[0].source)
      this.objects.set(upload.key, {
        size: ranges.reduce((n, r) => n + r.end - r.start + 1, 0),
        etag: '"multipart"',
        ...(src.body === undefined ? {} : { body: new Uint8Array(Buffer.concat(ranges.map((r) => src.body!.subarray(r.start, r.end + 1)))) }),
      })
      this.uploads.delete(input.UploadId)
      return {}
    }
    if (cmd instanceof AbortMultipartUploadCommand) {
      this.uploads.delete(input.UploadId)
      return {}
    }
    if (cmd instanceof DeleteObjectsCommand) {
      for (const { Key } of input.Delete.Objects) this.objects.delete(Key)
      return {}
    }
    throw new Error(`fake S3 does not know ${name}`)
  }

  #need(key: string): FakeObject {
    const o = this.objects.get(key)
    if (o === undefined) throw new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: 'The specified key does not exist.' })
    return o
  }

  #source(copySource: string): string {
    const [b, ...rest] = copySource.split('/').map(decodeURIComponent)
    expect(b).toBe(bucket)
    return rest.join('/')
  }
}

function setup(options: Partial<S3ObjectStoreOptions> = {}) {
  const s3 = new FakeS3()
  const store = new S3ObjectStore({ client: s3.client, bucket, prefix: 'pre/fix', ...options })
  return { s3, store }
}

const code = (c: string) => expect.objectContaining({ code: c })
const dataCalls = (s3: FakeS3) => s3.calls.filter((c) => c.name === 'GetObjectCommand' || c.name === 'PutObjectCommand')

describe('S3ObjectStore (fake client)', () => {
  it('stores key K at `${prefix}/K` and passes the caller\'s signal to every request', async () => {
    const { s3, store } = setup({ prefix: 'pre/fix/' })
    const signal = new AbortController().signal
    await store.put('a/b', bytes('hello'), { signal })
    expect(s3.objects.has('pre/fix/a/b')).toBe(true)
    expect(await store.get('a/b', { signal })).toEqual(bytes('hello'))
    expect(await store.head('a/b', { signal })).toEqual({ key: 'a/b', size: 5, lastModified: 1_700_000_000_000 })
    expect(await collect(store.list('a/', { signal }))).toEqual([{ key: 'a/b', size: 5, lastModified: 1_700_000_000_000 }])
    await store.copy('a/b', 'c', { signal })
    await store.delete(['a/b', 'c'], { signal })
    expect(s3.objects.size).toBe(0)
    expect(s3.calls.map((c) => c.name)).toEqual([
      'PutObjectCommand', 'GetObjectCommand', 'HeadObjectCommand', 'ListObjectsV2Command',
      'HeadObjectCommand', 'CopyObjectCommand', 'DeleteObjectsCommand',
    ])
    for (const call of s3.calls) expect(call.options?.abortSignal, call.name).toBe(signal)
    expect(s3.named('ListObjectsV2Command')[0].input.Prefix).toBe('pre/fix/a/')
  })

  it('uses keys as they are without a prefix', async () => {
    const { s3, store } = setup({ prefix: '' })
    await store.put('a', bytes('x'))
    expect([...s3.objects.keys()]).toEqual(['a'])
    expect(store.prefix).toBe('')
  })

  it('rejects bad keys before sending anything', async () => {
    const { s3, store } = setup()
    await expect(store.put('../a', bytes('x'))).rejects.toEqual(code('INVALID_ARGUMENT'))
    await expect(store.copy('a', 'b/')).rejects.toEqual(code('INVALID_ARGUMENT'))
    await expect(store.delete(['a', ''])).rejects.toEqual(code('INVALID_ARGUMENT'))
    await expect(collect(store.list('/x'))).rejects.toEqual(code('INVALID_ARGUMENT'))
    expect(s3.calls).toEqual([])
  })

  it('pages through ListObjectsV2 with ContinuationToken, skipping what is not a valid key', async () => {
    const { s3, store } = setup()
    s3.pageSize = 2
    for (const k of ['pre/fix/1', 'pre/fix/2', 'pre/fix/3', 'pre/fix/dir/', 'pre/fix/a//b', 'pre/fix/4', 'pre/fix/5', 'pre/fixed', 'other']) s3.set(k, bytes('v'))
    const keys = (await collect(store.list(''))).map((o) => o.key)
    expect(keys).toEqual(['1', '2', '3', '4', '5'])
    const lists = s3.named('ListObjectsV2Command')
    expect(lists.map((c) => c.input.ContinuationToken)).toEqual([undefined, 'token-2', 'token-4', 'token-6'])
    expect(lists.every((c) => c.input.Prefix === 'pre/fix/')).toBe(true)
  })

  it('stops listing when the signal fires between pages', async () => {
    const { s3, store } = setup()
    s3.pageSize = 1
    for (const k of ['a', 'b', 'c']) s3.set(`pre/fix/${k}`, bytes('v'))
    const ac = new AbortController()
    const seen: string[] = []
    const run = async () => {
      for await (const o of store.list('', { signal: ac.signal })) {
        seen.push(o.key)
        ac.abort()
      }
    }
    await expect(run()).rejects.toEqual(code('ABORTED'))
    expect(seen).toEqual(['a'])
    expect(s3.named('ListObjectsV2Command')).toHaveLength(1)
  })

  describe('copy', () => {
    it('uses one server-side CopyObject up to the threshold, with an encoded CopySource', async () => {
      const { s3, store } = setup({ multipartCopyThresholdBytes: 10 })
      s3.set('pre/fix/dir/a b+c=ü', bytes('0123456789'))
      expect(await store.copy('dir/a b+c=ü', 'out')).toEqual({ key: 'out', size: 10, lastModified: 1_700_000_000_000 })
      expect(s3.named('CopyObjectCommand')).toHaveLength(1)
      expect(s3.named('CopyObjectCommand')[0].input).toMatchObject({ Key: 'pre/fix/out', CopySource: 'bkt/pre/fix/dir/a%20b%2Bc%3D%C3%BC' })
      expect(s3.objects.get('pre/fix/out')?.body).toEqual(bytes('0123456789'))
      expect(dataCalls(s3)).toEqual([])
      expect(s3.named('CreateMultipartUploadCommand')).toEqual([])
    })

    it('uses UploadPartCopy above the threshold: ranges cover the object exactly, then Complete', async () => {
      const { s3, store } = setup({ multipartCopyThresholdBytes: 10, partSizeBytes: 4 })
      s3.set('pre/fix/big', bytes('abcdefghijk'))
      const etag = s3.objects.get('pre/fix/big')!.etag
      expect(await store.copy('big', 'copy')).toMatchObject({ key: 'copy', size: 11 })
      const parts = s3.named('UploadPartCopyCommand').map((c) => c.input).sort((a, b) => a.PartNumber - b.PartNumber)
      expect(parts.map((p) => [p.PartNumber, p.CopySourceRange])).toEqual([[1, 'bytes=0-3'], [2, 'bytes=4-7'], [3, 'bytes=8-10']])
      for (const p of parts) expect(p).toMatchObject({ Key: 'pre/fix/copy', CopySource: 'bkt/pre/fix/big', CopySourceIfMatch: etag })
      expect(s3.named('CompleteMultipartUploadCommand')).toHaveLength(1)
      expect(s3.named('AbortMultipartUploadCommand')).toEqual([])
      expect(s3.named('CopyObjectCommand')).toEqual([])
      expect(s3.objects.get('pre/fix/copy')?.body).toEqual(bytes('abcdefghijk'))
      expect(dataCalls(s3)).toEqual([])
      expect(s3.uploads.size).toBe(0)
    })

    it('copies objects above 5 GiB with multipart by default, within 10,000 parts of at most 5 GiB', async () => {
      const { s3, store } = setup({ partSizeBytes: 5 * 1024 ** 2, partCopyConcurrency: 64 })
      const size = 60 * GiB + 7
      s3.set('pre/fix/huge', size)
      expect(await store.copy('huge', 'huge2')).toMatchObject({ size })
      const ranges = s3.named('UploadPartCopyCommand')
        .map((c) => c.input)
        .sort((a, b) => a.PartNumber - b.PartNumber)
        .map((p) => p.CopySourceRange.slice(6).split('-').map(Number) as [number, number])
      expect(ranges.length).toBeLessThanOrEqual(10_000)
      let next = 0
      for (const [start, end] of ranges) {
        expect(start).toBe(next)
        expect(end - start + 1).toBeLessThanOrEqual(5 * GiB)
        next = end + 1
      }
      expect(next).toBe(size)
      expect(s3.objects.get('pre/fix/huge2')?.size).toBe(size)
    })

    it('copies 5 GiB exactly with one CopyObject by default', async () => {
      const { s3, store } = setup()
      s3.set('pre/fix/five', 5 * GiB)
      s3.objects.get('pre/fix/five')!.body = new Uint8Array(0)
      await store.copy('five', 'five2')
      expect(s3.named('CopyObjectCommand')).toHaveLength(1)
      expect(s3.named('CreateMultipartUploadCommand')).toEqual([])
    })

    it('aborts the upload when a part fails, and rejects IO_ERROR with the cause', async () => {
      const { s3, store } = setup({ multipartCopyThresholdBytes: 10, partSizeBytes: 4, partCopyConcurrency: 1 })
      s3.set('pre/fix/big', bytes('abcdefghijk'))
      const failure = slowDown()
      s3.fail = (name, input) => (name === 'UploadPartCopyCommand' && input.PartNumber === 2 ? failure : undefined)
      const err = await store.copy('big', 'copy').catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'IO_ERROR', cause: failure, details: { s3Code: 'SlowDown', throttled: true } })
      const aborts = s3.named('AbortMultipartUploadCommand')
      expect(aborts).toHaveLength(1)
      expect(aborts[0].input).toMatchObject({ Key: 'pre/fix/copy', UploadId: expect.any(String) })
      expect(s3.named('UploadPartCopyCommand')).toHaveLength(2)
      expect(s3.named('CompleteMultipartUploadCommand')).toEqual([])
      expect(s3.objects.has('pre/fix/copy')).toBe(false)
      expect(s3.uploads.size).toBe(0)
    })

    it('aborts the upload when Complete fails', async () => {
      const { s3, store } = setup({ multipartCopyThresholdBytes: 1, partSizeBytes: 4 })
      s3.set('pre/fix/big', bytes('abcdefghijk'))
      s3.fail = (name) => (name === 'CompleteMultipartUploadCommand' ? accessDenied() : undefined)
      await expect(store.copy('big', 'copy')).rejects.toEqual(code('IO_ERROR'))
      expect(s3.named('AbortMultipartUploadCommand')).toHaveLength(1)
      expect(s3.uploads.size).toBe(0)
    })

    it('aborts the upload, without the fired signal, when the caller aborts mid-copy', async () => {
      const { s3, store } = setup({ multipartCopyThresholdBytes: 1, partSizeBytes: 2, partCopyConcurrency: 1 })
      s3.set('pre/fix/big', bytes('abcdefghijk'))
      const ac = new AbortController()
      s3.fail = (name, input) => {
        if (name === 'UploadPartCopyCommand' && input.PartNumber === 3) ac.abort()
        return undefined
      }
      await expect(store.copy('big', 'copy', { signal: ac.signal })).rejects.toEqual(code('ABORTED'))
      const aborts = s3.named('AbortMultipartUploadCommand')
      expect(aborts).toHaveLength(1)
      expect(aborts[0].options?.abortSignal).toBeUndefined()
      expect(s3.named('CompleteMultipartUploadCommand')).toEqual([])
      expect(s3.uploads.size).toBe(0)
    })

    it('rejects NOT_FOUND for a missing source without copying, and heads only for a copy onto itself', async () => {
      const { s3, store } = setup()
      await expect(store.copy('missing', 'b')).rejects.toEqual(code('NOT_FOUND'))
      expect(s3.calls.map((c) => c.name)).toEqual(['HeadObjectCommand'])
      s3.set('pre/fix/a', bytes('x'))
      expect(await store.copy('a', 'a')).toMatchObject({ key: 'a', size: 1 })
      expect(s3.calls.map((c) => c.name)).toEqual(['HeadObjectCommand', 'HeadObjectCommand'])
    })

    it('rejects NOT_FOUND when the source vanishes between HeadObject and CopyObject', async () => {
      const { s3, store } = setup()
      s3.set('pre/fix/a', bytes('x'))
      s3.fail = (name) => (name === 'CopyObjectCommand' ? new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: 'gone' }) : undefined)
      await expect(store.copy('a', 'b')).rejects.toEqual(code('NOT_FOUND'))
    })
  })

  describe('copy with a sizeBytes hint', () => {
    const names = (s3: FakeS3) => s3.calls.map((c) => c.name)

    it('sends one CopyObject and no HeadObject up to the threshold, reporting the hint and the copy\'s LastModified', async () => {
      const { s3, store } = setup({ multipartCopyThresholdBytes: 10 })
      s3.set('pre/fix/dir/a b', bytes('0123456789'))
      const signal = new AbortController().signal
      expect(await store.copy('dir/a b', 'out', { sizeBytes: 10, signal })).toEqual({ key: 'out', size: 10, lastModified: 1_700_000_000_000 })
      expect(names(s3)).toEqual(['CopyObjectCommand'])
      expect(s3.calls[0].input).toMatchObject({ Key: 'pre/fix/out', CopySource: 'bkt/pre/fix/dir/a%20b' })
      expect(s3.calls[0].options?.abortSignal).toBe(signal)
      expect(s3.objects.get('pre/fix/out')?.body).toEqual(bytes('0123456789'))
      // 0 is a hint too, and 5 GiB (the default threshold) is still one CopyObject.
      s3.set('pre/fix/empty', bytes(''))
      expect(await store.copy('empty', 'out2', { sizeBytes: 0 })).toMatchObject({ size: 0 })
      const big = setup()
      big.s3.set('pre/fix/five', 5 * GiB)
      expect(await big.store.copy('five', 'five2', { sizeBytes: 5 * GiB })).toMatchObject({ size: 5 * GiB })
      expect(names(big.s3)).toEqual(['CopyObjectCommand'])
      expect(s3.named('HeadObjectCommand')).toEqual([])
    })

    it('heads first without a hint, with a hint above the threshold, and for a copy onto itself', async () => {
      const { s3, store } = setup({ multipartCopyThresholdBytes: 10, partSizeBytes: 4 })
      s3.set('pre/fix/small', bytes('abc'))
      s3.set('pre/fix/big', bytes('abcdefghijk'))
      await store.copy('small', 'x')
      expect(names(s3)).toEqual(['HeadObjectCommand', 'CopyObjectCommand'])
      s3.calls.length = 0
      // A hint above the threshold is not trusted to pick multipart: the real size does.
      expect(await store.copy('small', 'y', { sizeBytes: 11 })).toMatchObject({ size: 3 })
      expect(names(s3)).toEqual(['HeadObjectCommand', 'CopyObjectCommand'])
      s3.calls.length = 0
      expect(await store.copy('big', 'z', { sizeBytes: 11 })).toMatchObject({ size: 11 })
      expect(names(s3)[0]).toBe('HeadObjectCommand')
      expect(s3.named('UploadPartCopyCommand')).toHaveLength(3)
      expect(s3.objects.get('pre/fix/z')?.body).toEqual(bytes('abcdefghijk'))
      s3.calls.length = 0
      expect(await store.copy('small', 'small', { sizeBytes: 3 })).toEqual({ key: 'small', size: 3, lastModified: 1_700_000_000_000 })
      expect(names(s3)).toEqual(['HeadObjectCommand'])
    })

    it('rejects NOT_FOUND for a missing source (NoSuchKey from CopyObject) and writes nothing', async () => {
      const { s3, store } = setup()
      await expect(store.copy('missing', 'b', { sizeBytes: 1 })).rejects.toEqual(code('NOT_FOUND'))
      expect(names(s3)).toEqual(['CopyObjectCommand'])
      expect(s3.objects.size).toBe(0)
      // A bodiless 404 (what some stores send) is absence too; a missing bucket is not.
      s3.fail = (name) => (name === 'CopyObjectCommand' ? new NotFound({ $metadata: { httpStatusCode: 404 }, message: 'UnknownError' }) : undefined)
      await expect(store.copy('missing', 'b', { sizeBytes: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND', details: { key: 'missing' } })
      s3.fail = () => new NoSuchBucket({ $metadata: { httpStatusCode: 404 }, message: 'The specified bucket does not exist' })
      await expect(store.copy('missing', 'b', { sizeBytes: 1 })).rejects.toMatchObject({ code: 'IO_ERROR', details: { s3Code: 'NoSuchBucket' } })
    })

    it('copies the whole source whatever a wrong hint says, and reports the hint as its size', async () => {
      const { s3, store } = setup({ multipartCopyThresholdBytes: 100 })
      s3.set('pre/fix/a', bytes('0123456789'))
      // The documented trade-off: the size is the caller's hint, not checked (no HeadObject).
      expect(await store.copy('a', 'short', { sizeBytes: 3 })).toMatchObject({ key: 'short', size: 3 })
      expect(await store.copy('a', 'long', { sizeBytes: 50 })).toMatchObject({ key: 'long', size: 50 })
      expect(s3.objects.get('pre/fix/short')?.body).toEqual(bytes('0123456789'))
      expect(s3.objects.get('pre/fix/long')?.body).toEqual(bytes('0123456789'))
      expect(s3.named('HeadObjectCommand')).toEqual([])
    })

    it('falls back to HeadObject and a multipart copy of the real size when a small hint hides a source above 5 GiB', async () => {
      const { s3, store } = setup({ partSizeBytes: GiB, partCopyConcurrency: 8 })
      const size = 6 * GiB + 5
      s3.set('pre/fix/huge', size)
      expect(await store.copy('huge', 'huge2', { sizeBytes: 1024 })).toMatchObject({ key: 'huge2', size })
      expect(names(s3).slice(0, 3)).toEqual(['CopyObjectCommand', 'HeadObjectCommand', 'CreateMultipartUploadCommand'])
      expect(s3.named('CopyObjectCommand')).toHaveLength(1)
      expect(s3.named('UploadPartCopyCommand')).toHaveLength(7)
      expect(s3.named('CompleteMultipartUploadCommand')).toHaveLength(1)
      expect(s3.objects.get('pre/fix/huge2')?.size).toBe(size)
    })

    it('reports a 400 that is not about the size as it is, after one HeadObject and without copying again', async () => {
      const { s3, store } = setup()
      s3.set('pre/fix/a', bytes('x'))
      const failure = new S3ServiceException({ name: 'InvalidRequest', $fault: 'client', $metadata: { httpStatusCode: 400 }, message: 'something else' })
      s3.fail = (name) => (name === 'CopyObjectCommand' ? failure : undefined)
      await expect(store.copy('a', 'b', { sizeBytes: 1 })).rejects.toMatchObject({ code: 'IO_ERROR', cause: failure, details: { s3Code: 'InvalidRequest', httpStatusCode: 400 } })
      expect(names(s3)).toEqual(['CopyObjectCommand', 'HeadObjectCommand'])
      // The source vanished in between: NOT_FOUND.
      s3.objects.clear()
      await expect(store.copy('a', 'b', { sizeBytes: 1 })).rejects.toEqual(code('NOT_FOUND'))
    })

    it('sends no HeadObject after throttling, access or abort failures of CopyObject', async () => {
      for (const make of [slowDown, accessDenied, () => Object.assign(new Error('The operation was aborted'), { name: 'AbortError' })]) {
        const { s3, store } = setup()
        s3.set('pre/fix/a', bytes('x'))
        s3.fail = (name) => (name === 'CopyObjectCommand' ? make() : undefined)
        await expect(store.copy('a', 'b', { sizeBytes: 1 })).rejects.toHaveProperty('code')
        expect(names(s3)).toEqual(['CopyObjectCommand'])
      }
      const { s3, store } = setup()
      s3.set('pre/fix/a', bytes('x'))
      const ac = new AbortController()
      // The caller gives up while CopyObject fails with a 400: no HeadObject follows either.
      s3.fail = (name) => {
        if (name !== 'CopyObjectCommand') return undefined
        ac.abort()
        return copyTooLarge()
      }
      await expect(store.copy('a', 'b', { sizeBytes: 1, signal: ac.signal })).rejects.toEqual(code('ABORTED'))
      expect(names(s3)).toEqual(['CopyObjectCommand'])
    })

    it('rejects a hint that is not a non-negative safe integer with a TypeError, before sending anything (also behind guardObjectStore)', async () => {
      const { s3, store } = setup()
      const guarded = guardObjectStore(store)
      for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '10', null, 10n]) {
        await expect(store.copy('a', 'b', { sizeBytes: bad as number }), String(bad)).rejects.toThrow(TypeError)
        await expect(guarded.copy('a', 'b', { sizeBytes: bad as number }), String(bad)).rejects.toThrow(/Expected `sizeBytes` to be a non-negative safe integer/)
      }
      expect(s3.calls).toEqual([])
    })
  })

  describe('delete', () => {
    it('sends DeleteObjects in batches of deleteBatchSize, Quiet, without duplicates', async () => {
      const { s3, store } = setup()
      const keys = Array.from({ length: 2500 }, (_, i) => `k/${i}`)
      for (const k of keys.slice(0, 10)) s3.set(`pre/fix/${k}`, bytes('v'))
      await store.delete([...keys, 'k/0', 'k/1'])
      const calls = s3.named('DeleteObjectsCommand')
      expect(calls.map((c) => c.input.Delete.Objects.length)).toEqual([1000, 1000, 500])
      expect(calls.every((c) => c.input.Delete.Quiet === true)).toBe(true)
      expect(calls.flatMap((c) => c.input.Delete.Objects.map((o: { Key: string }) => o.Key))).toEqual(keys.map((k) => `pre/fix/${k}`))
      expect(s3.objects.size).toBe(0)

      const small = setup({ deleteBatchSize: 2 })
      await small.store.delete(['a', 'b', 'c', 'd', 'e'])
      expect(small.s3.named('DeleteObjectsCommand').map((c) => c.input.Delete.Objects.length)).toEqual([2, 2, 1])
      await small.store.delete([])
      expect(small.s3.named('DeleteObjectsCommand')).toHaveLength(3)
    })

    it('treats per-key errors as IO_ERROR, except NoSuchKey, and stops at the failed batch', async () => {
      const { s3, store } = setup({ deleteBatchSize: 2 })
      let errors: unknown[] = [{ Key: 'pre/fix/b', Code: 'NoSuchKey', Message: 'absent' }]
      const original = s3.send.bind(s3)
      s3.send = async (cmd: any, options?: any) => {
        const res = await original(cmd, options)
        return cmd instanceof DeleteObjectsCommand ? { ...res, Errors: errors } : res
      }
      await store.delete(['a', 'b'])
      errors = [{ Key: 'pre/fix/b', Code: 'AccessDenied', Message: 'Access Denied' }, { Key: 'pre/fix/a', Code: 'NoSuchKey' }]
      const err = await store.delete(['a', 'b', 'c', 'd']).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'IO_ERROR', details: { errors: [{ key: 'b', s3Code: 'AccessDenied', message: 'Access Denied' }] } })
      expect(s3.named('DeleteObjectsCommand')).toHaveLength(2)
    })
  })

  describe('error mapping', () => {
    const operations: [string, (s: S3ObjectStore) => Promise<unknown>][] = [
      ['put', (s) => s.put('a', bytes('x'))],
      ['get', (s) => s.get('a')],
      ['head', (s) => s.head('a')],
      ['list', (s) => collect(s.list(''))],
      ['copy', (s) => s.copy('a', 'b')],
      ['copy with a size hint', (s) => s.copy('a', 'b', { sizeBytes: 1 })],
      ['delete', (s) => s.delete(['a'])],
    ]

    it('maps throttling, access and server errors to IO_ERROR with the backend error as cause', async () => {
      const cases: [() => Error, boolean][] = [
        [slowDown, true],
        [() => new S3ServiceException({ name: 'Throttling', $fault: 'client', $metadata: { httpStatusCode: 400 } }), true],
        [() => new S3ServiceException({ name: 'ServiceUnavailable', $fault: 'server', $metadata: { httpStatusCode: 503 } }), true],
        [accessDenied, false],
        [() => new S3ServiceException({ name: 'InternalError', $fault: 'server', $metadata: { httpStatusCode: 500 } }), false],
        [() => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }), false],
        [() => new NoSuchBucket({ $metadata: { httpStatusCode: 404 }, message: 'The specified bucket does not exist' }), false],
      ]
      for (const [make, throttled] of cases) {
        for (const [op, run] of operations) {
          const { s3, store } = setup()
          s3.set('pre/fix/a', bytes('x'))
          const failure = make()
          s3.fail = () => failure
          const err = await run(store).then(() => undefined, (e: unknown) => e)
          expect(err, `${failure.name} on ${op}`).toMatchObject({ code: 'IO_ERROR', cause: failure, details: { throttled } })
        }
      }
    })

    it('reads NoSuchKey and a 404 NotFound as absence', async () => {
      const { s3, store } = setup()
      expect(await store.get('a')).toBeUndefined()
      expect(await store.head('a')).toBeUndefined()
      s3.fail = () => new NotFound({ $metadata: { httpStatusCode: 404 }, message: 'UnknownError' })
      expect(await store.get('a')).toBeUndefined()
    })

    it('maps AbortError and a fired signal to ABORTED', async () => {
      for (const [op, run] of operations) {
        const { s3, store } = setup()
        s3.set('pre/fix/a', bytes('x'))
        s3.fail = () => Object.assign(new Error('The operation was aborted'), { name: 'AbortError' })
        await expect(run(store), op).rejects.toEqual(code('ABORTED'))
      }
      const { s3, store } = setup()
      await expect(store.get('a', { signal: AbortSignal.abort() })).rejects.toEqual(code('ABORTED'))
      expect(s3.calls).toEqual([])
    })
  })

  describe('options', () => {
    it('rejects misuse with a TypeError', () => {
      const client = new FakeS3().client
      const bad: [string, unknown][] = [
        ['no options', undefined],
        ['no client', { bucket }],
        ['client without send', { client: {}, bucket }],
        ['empty bucket', { client, bucket: '' }],
        ['absolute prefix', { client, bucket, prefix: '/abs' }],
        ['prefix with ..', { client, bucket, prefix: 'a/../b' }],
        ['prefix with an empty segment', { client, bucket, prefix: 'a//b' }],
        ['deleteBatchSize 0', { client, bucket, deleteBatchSize: 0 }],
        ['deleteBatchSize 1001', { client, bucket, deleteBatchSize: 1001 }],
        ['deleteBatchSize 1.5', { client, bucket, deleteBatchSize: 1.5 }],
        ['partSizeBytes 0', { client, bucket, partSizeBytes: 0 }],
        ['multipartCopyThresholdBytes above 5 GiB', { client, bucket, multipartCopyThresholdBytes: 6 * GiB }],
      ]
      for (const [label, options] of bad) expect(() => new S3ObjectStore(options as S3ObjectStoreOptions), label).toThrow(TypeError)
    })

    it('declares server-side and multipart copy', () => {
      expect(setup().store.capabilities).toEqual({ serverSideCopy: true, hardLink: false, multipartCopy: true })
      expect(setup({ prefix: 'a/b//' }).store.prefix).toBe('a/b')
    })
  })
})
