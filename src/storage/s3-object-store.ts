import {
  CopyObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { SnapshotError, abortError, throwIfAborted } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { assertBody, assertCopyMode, assertCopySizeHint, assertKeyList, isValidObjectKey, validateObjectKey, validatePrefix } from './keys-validate.js'
import type { CopyOptions, ObjectInfo, ObjectStore, ObjectStoreCapabilities, PutOptions, PutStreamOptions } from './object-store.js'
import { isS3NotFound, mapS3DeleteErrors, mapS3Error, mayBeS3CopyTooLarge } from './s3-errors.js'
import { copySource, multipartCopy } from './s3-multipart-copy.js'
import { uploadStream } from './s3-multipart-upload.js'
import { assertStreamBody, assertStreamSize, checkedBody, mappedChunks, oneChunk, releaseBody, streamFailure, type BodyProgress } from './stream-body.js'

const GiB = 1024 ** 3
const MiB = 1024 ** 2
/** S3's limit on the parts of one multipart upload. */
const MAX_PARTS = 10_000
/** S3's limit on one part (and on one CopyObject and one PutObject). */
const MAX_PART_BYTES = 5 * GiB
/** S3's minimum size of a part but the last. */
const MIN_PART_BYTES = 5 * MiB

/** Options of {@link S3ObjectStore}. */
export interface S3ObjectStoreOptions {
  /** An `S3Client` from `@aws-sdk/client-s3`; the store never destroys it. */
  client: S3Client
  /** The bucket; it must exist. */
  bucket: string
  /**
   * Key prefix inside the bucket: key `K` is stored at `${prefix}/${K}` (or `K` when
   * empty). Trailing '/' are ignored.
   * @default ''
   */
  prefix?: string
  /**
   * Keys per DeleteObjects request, 1–1000.
   * @default 1000
   */
  deleteBatchSize?: number
  /**
   * Objects larger than this are copied with multipart UploadPartCopy instead of one
   * CopyObject (which S3 limits to 5 GiB).
   * @default 5 GiB
   */
  multipartCopyThresholdBytes?: number
  /**
   * Part size of a multipart copy; raised when an object would need more than 10,000
   * parts. S3 requires at least 5 MiB (except the last part).
   * @default 512 MiB
   */
  partSizeBytes?: number
  /**
   * UploadPartCopy requests in flight for one multipart copy.
   * @default 4
   */
  partCopyConcurrency?: number
  /**
   * Part size of a multipart upload (`putStream`): a body up to this size is one
   * PutObject, a longer one a multipart upload. Raised when a body of known size would
   * need more than 10,000 parts (without `sizeBytes`, a body above 10,000 parts fails).
   * At least 5 MiB (S3's minimum part). An upload holds at most about
   * `uploadQueueSize + 1` parts in memory.
   * @default 5 MiB
   */
  uploadPartSizeBytes?: number
  /**
   * UploadPart requests in flight for one multipart upload. With the default part size,
   * an upload holds about 20 MiB: the RSS growth of a 2 GiB export stays well under 64 MB
   * (export-rss bench; 4 in flight measured about 6 MB more).
   * @default 3
   */
  uploadQueueSize?: number
}

function positiveInt(name: string, value: unknown, fallback: number, max = Number.MAX_SAFE_INTEGER, min = 1): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new TypeError(`Expected \`${name}\` to be an integer from ${min} to ${max}, got \`${String(value)}\``)
  }
  return value
}

const notFound = (key: string) => new SnapshotError('NOT_FOUND', `object not found: ${JSON.stringify(key)}`, { details: { key } })

/**
 * An ObjectStore over an S3-compatible bucket (AWS S3, MinIO, R2, Ceph, …), from
 * `vecsnap/s3`. Copies are server-side: CopyObject, or UploadPartCopy above
 * `multipartCopyThresholdBytes`, so no data bytes pass through the process.
 *
 * `put` reports `lastModified` as the local time the upload finished (S3 does not
 * return it); `head` and `list` report the bucket's.
 *
 * @example
 * import { S3Client } from '@aws-sdk/client-s3'
 * import { S3ObjectStore } from 'vecsnap/s3'
 * const objects = new S3ObjectStore({ client: new S3Client({}), bucket: 'my-bucket', prefix: 'vecsnap' })
 */
export class S3ObjectStore implements ObjectStore {
  /** Server-side copy, multipart copy, no hard links. */
  readonly capabilities: ObjectStoreCapabilities = Object.freeze({ serverSideCopy: true, hardLink: false, multipartCopy: true })
  /** The bucket. */
  readonly bucket: string
  /** The key prefix, without trailing '/' ('' for none). */
  readonly prefix: string
  readonly #client: S3Client
  readonly #root: string
  readonly #deleteBatchSize: number
  readonly #multipartThreshold: number
  readonly #partSize: number
  readonly #partConcurrency: number
  readonly #uploadPartSize: number
  readonly #uploadQueueSize: number

  /** Validates the options; the client is the caller's (never destroyed by the store). Throws a `TypeError` on bad options. */
  constructor(options: S3ObjectStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('Expected `options` to be an object with a `client` and a `bucket`')
    const { client, bucket } = options
    if (client === null || typeof client !== 'object' || typeof client.send !== 'function') {
      throw new TypeError('Expected `client` to be an S3Client')
    }
    if (typeof bucket !== 'string' || bucket === '') throw new TypeError(`Expected \`bucket\` to be a non-empty string, got \`${String(bucket)}\``)
    const prefix = (options.prefix ?? '').replace(/\/+$/, '')
    if (prefix !== '' && !isValidObjectKey(prefix)) throw new TypeError(`Expected \`prefix\` to be a relative '/'-separated path, got \`${String(options.prefix)}\``)
    this.#client = client
    this.bucket = bucket
    this.prefix = prefix
    this.#root = prefix === '' ? '' : `${prefix}/`
    this.#deleteBatchSize = positiveInt('deleteBatchSize', options.deleteBatchSize, 1000, 1000)
    this.#multipartThreshold = positiveInt('multipartCopyThresholdBytes', options.multipartCopyThresholdBytes, MAX_PART_BYTES, MAX_PART_BYTES, 0)
    this.#partSize = positiveInt('partSizeBytes', options.partSizeBytes, 512 * MiB, MAX_PART_BYTES)
    this.#partConcurrency = positiveInt('partCopyConcurrency', options.partCopyConcurrency, 4, 64)
    this.#uploadPartSize = positiveInt('uploadPartSizeBytes', options.uploadPartSizeBytes, 5 * MiB, MAX_PART_BYTES, MIN_PART_BYTES)
    this.#uploadQueueSize = positiveInt('uploadQueueSize', options.uploadQueueSize, 3, 64)
  }

  /** Writes `body` at `key` with one PutObject (atomic on S3); resolves what was written. */
  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<ObjectInfo> {
    const Key = this.#key(key)
    assertBody(body)
    const { signal } = options
    throwIfAborted(signal)
    try {
      await this.#client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, ContentLength: body.byteLength }), { abortSignal: signal })
    } catch (err) {
      throw mapS3Error(err, `put ${JSON.stringify(key)}`, signal)
    }
    return { key, size: body.byteLength, lastModified: Date.now() }
  }

  /** The object's bytes (GetObject), or `undefined` when it is absent. */
  async get(key: string, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    const Key = this.#key(key)
    const { signal } = options
    throwIfAborted(signal)
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: signal })
      return res.Body === undefined ? new Uint8Array(0) : await res.Body.transformToByteArray()
    } catch (err) {
      if (isS3NotFound(err)) return undefined
      throw mapS3Error(err, `get ${JSON.stringify(key)}`, signal)
    }
  }

  /**
   * The object's bytes as a stream (GetObject's body, in the chunks the socket delivers), or
   * `undefined` when it is absent. The response holds a connection of the client's pool
   * until the stream is read to the end or stopped early (`break`); a fired `signal`
   * destroys it.
   */
  async getStream(key: string, options: AbortOptions = {}): Promise<AsyncIterable<Uint8Array> | undefined> {
    const Key = this.#key(key)
    const { signal } = options
    throwIfAborted(signal)
    const what = `get ${JSON.stringify(key)}`
    let body: unknown
    try {
      body = (await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: signal })).Body
    } catch (err) {
      if (isS3NotFound(err)) return undefined
      throw mapS3Error(err, what, signal)
    }
    if (body === undefined || body === null) return oneChunk(new Uint8Array(0))
    const stream = body as AsyncIterable<Uint8Array> & { destroy?: (err?: Error) => void; once?: (event: string, fn: () => void) => void }
    if (signal !== undefined && typeof stream.destroy === 'function') {
      // The request's abortSignal may no longer reach a response being read: end it here.
      const onAbort = () => stream.destroy!(abortError(signal))
      signal.addEventListener('abort', onAbort, { once: true })
      stream.once?.('close', () => signal.removeEventListener('abort', onAbort))
    }
    return mappedChunks(stream, what, signal, mapS3Error)
  }

  /**
   * Writes the streamed `body` at `key` with bounded memory: at most about
   * `uploadQueueSize + 1` parts of `uploadPartSizeBytes` (raised so that a body of known
   * `sizeBytes` fits in 10,000 parts) are held at once. A body that fits in one part is
   * one PutObject (of its chunks, copied only when there are several); a longer one a
   * multipart upload with `uploadQueueSize` parts in flight, its part buffers reused,
   * completed only once every part is in (S3 makes the object appear whole). When the body
   * throws, the `signal` fires or a request fails, the requests in flight are cancelled
   * and the multipart upload is aborted (AbortMultipartUpload) before this rejects, so no
   * parts are left behind (a bucket lifecycle rule that aborts incomplete uploads covers a
   * process that crashes mid-upload). Chunks are kept by reference until they are sent:
   * the body must not modify a chunk after yielding it.
   */
  async putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutStreamOptions = {}): Promise<ObjectInfo> {
    const Key = this.#key(key)
    assertStreamBody(body)
    assertStreamSize(options.sizeBytes)
    const { signal, sizeBytes } = options
    throwIfAborted(signal)
    // Cancels every request of this upload but AbortMultipartUpload: on the caller's signal, a failed request, the body's failure.
    const cancel = new AbortController()
    const onAbort = () => cancel.abort(signal?.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    const progress: BodyProgress = { bytes: 0 }
    const checked = checkedBody(body, { key, sizeBytes, signal, onFailure: () => cancel.abort() }, progress)
    try {
      await uploadStream(checked, {
        client: this.#client,
        bucket: this.bucket,
        key: Key,
        partSize: Math.min(MAX_PART_BYTES, Math.max(this.#uploadPartSize, sizeBytes === undefined ? 0 : Math.ceil(sizeBytes / MAX_PARTS))),
        queueSize: this.#uploadQueueSize,
        signal: cancel.signal,
        onFailure: () => cancel.abort(),
      })
    } catch (err) {
      // The upload may have stopped reading the body, or never started.
      releaseBody(body, checked)
      throw streamFailure(progress.failure ?? err, `put ${JSON.stringify(key)}`, signal, mapS3Error)
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
    return { key, size: progress.bytes, lastModified: Date.now() }
  }

  /** The object's size and modification time (HeadObject), or `undefined` when it is absent. */
  async head(key: string, options: AbortOptions = {}): Promise<ObjectInfo | undefined> {
    const Key = this.#key(key)
    throwIfAborted(options.signal)
    return this.#head(key, Key, options.signal)
  }

  /** Every object whose key starts with `prefix`, ordered by key (ListObjectsV2, paged). */
  async *list(prefix: string, options: AbortOptions = {}): AsyncGenerator<ObjectInfo> {
    validatePrefix(prefix)
    const { signal } = options
    throwIfAborted(signal)
    const root = this.#root
    let token: string | undefined
    try {
      do {
        throwIfAborted(signal)
        const page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: root + prefix, ContinuationToken: token }),
          { abortSignal: signal },
        )
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined || !object.Key.startsWith(root)) continue
          const key = object.Key.slice(root.length)
          // Skip what the API could not address anyway, e.g. console "folder" markers ending in '/'.
          if (!isValidObjectKey(key)) continue
          throwIfAborted(signal)
          yield { key, size: object.Size ?? 0, lastModified: object.LastModified?.getTime() ?? 0 }
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token !== undefined)
    } catch (err) {
      throw mapS3Error(err, `list ${JSON.stringify(prefix)}`, signal)
    }
  }

  /**
   * Copies `fromKey` to `toKey` inside the bucket; `NOT_FOUND` when the source is absent.
   * Always server-side; `mode` is accepted and ignored.
   *
   * Without a `sizeBytes` hint, or with one above `multipartCopyThresholdBytes`, a
   * HeadObject learns the size first (CopyObject or multipart UploadPartCopy). With a
   * hint up to the threshold, one CopyObject is all: the result's `size` is then the hint,
   * not checked (see the comment in the code).
   */
  async copy(fromKey: string, toKey: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    const from = this.#key(fromKey)
    const to = this.#key(toKey)
    assertCopyMode(options.mode)
    assertCopySizeHint(options.sizeBytes)
    const { signal, sizeBytes } = options
    throwIfAborted(signal)
    const what = `copy ${JSON.stringify(fromKey)} to ${JSON.stringify(toKey)}`
    let rejected: unknown
    if (sizeBytes !== undefined && sizeBytes <= this.#multipartThreshold && fromKey !== toKey) {
      // The hint saves the HeadObject, half the requests of a restore. CopyObject's response
      // has no size (only ETag and LastModified), so the size reported is the hint, unchecked.
      // Decided so because checking it costs the request the hint exists to save, and:
      // - a wrong hint cannot lose data: CopyObject copies the whole source whatever its
      //   size, and a source above 5 GiB, which S3 refuses to CopyObject, is caught below
      //   (HeadObject, then a multipart copy that reports the real size);
      // - what a size check catches on S3 is narrow: puts are atomic (no truncated objects),
      //   so only a source overwritten with another size since its size was recorded, or
      //   recorded wrong by the host. Restore's check (copied size vs the manifest's) no
      //   longer sees that on S3 for objects up to the threshold; `verifySnapshot` checks
      //   every object's size (and checksum) against the bucket for those who need it.
      try {
        const res = await this.#client.send(
          new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: copySource(this.bucket, from) }),
          { abortSignal: signal },
        )
        return { key: toKey, size: sizeBytes, lastModified: res.CopyObjectResult?.LastModified?.getTime() ?? Date.now() }
      } catch (err) {
        if (isS3NotFound(err)) throw notFound(fromKey)
        if (signal?.aborted || !mayBeS3CopyTooLarge(err)) throw mapS3Error(err, what, signal)
        // Perhaps a source above 5 GiB with a wrong hint: learn its real size below.
        rejected = err
      }
    }
    const source = await this.#head(fromKey, from, signal, true)
    if (source === undefined) throw notFound(fromKey)
    if (fromKey === toKey) return { key: toKey, size: source.size, lastModified: source.lastModified }
    try {
      if (source.size <= this.#multipartThreshold) {
        // CopyObject already failed for this source, and not for its size: report that failure.
        if (rejected !== undefined) throw rejected
        const res = await this.#client.send(
          new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: copySource(this.bucket, from) }),
          { abortSignal: signal },
        )
        return { key: toKey, size: source.size, lastModified: res.CopyObjectResult?.LastModified?.getTime() ?? Date.now() }
      }
      await multipartCopy({ client: this.#client, bucket: this.bucket, from, to, size: source.size, etag: source.etag, partSize: this.#partSize, concurrency: this.#partConcurrency, signal })
      return { key: toKey, size: source.size, lastModified: Date.now() }
    } catch (err) {
      if (isS3NotFound(err)) throw notFound(fromKey)
      throw mapS3Error(err, what, signal)
    }
  }

  /** Deletes the keys (DeleteObjects in batches of `deleteBatchSize`); absent keys are no error. */
  async delete(keys: readonly string[], options: AbortOptions = {}): Promise<void> {
    assertKeyList(keys)
    const backendKeys = [...new Set(keys)].map((key) => this.#key(key))
    const { signal } = options
    throwIfAborted(signal)
    for (let i = 0; i < backendKeys.length; i += this.#deleteBatchSize) {
      throwIfAborted(signal)
      const batch = backendKeys.slice(i, i + this.#deleteBatchSize)
      let errors
      try {
        const res = await this.#client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          { abortSignal: signal },
        )
        errors = res.Errors
      } catch (err) {
        throw mapS3Error(err, `delete of ${batch.length} objects`, signal)
      }
      const failure = mapS3DeleteErrors(errors, batch.length, (k) => (k.startsWith(this.#root) ? k.slice(this.#root.length) : k))
      if (failure !== undefined) throw failure
    }
  }

  /** The backend key of `key` (validated). */
  #key(key: string): string {
    validateObjectKey(key)
    return this.#root + key
  }

  async #head(key: string, Key: string, signal: AbortSignal | undefined, forCopy = false): Promise<(ObjectInfo & { etag?: string }) | undefined> {
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }), { abortSignal: signal })
      return { key, size: res.ContentLength ?? 0, lastModified: res.LastModified?.getTime() ?? 0, ...(forCopy && res.ETag ? { etag: res.ETag } : {}) }
    } catch (err) {
      if (isS3NotFound(err)) return undefined
      throw mapS3Error(err, `head ${JSON.stringify(key)}`, signal)
    }
  }
}
