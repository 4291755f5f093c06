import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3'
import { SnapshotError, throwIfAborted } from '../errors.js'

/** S3's limit on the parts of one multipart upload. */
const MAX_PARTS = 10_000
/** S3's limit on one part. */
const MAX_PART_BYTES = 5 * 1024 ** 3

/** The `x-amz-copy-source` value: bucket and key, each path segment URI-encoded. */
export function copySource(bucket: string, backendKey: string): string {
  return `${bucket}/${backendKey}`.split('/').map(encodeURIComponent).join('/')
}

/** Options of {@link multipartCopy}. */
export interface MultipartCopyOptions {
  client: S3Client
  bucket: string
  /** Backend keys. */
  from: string
  to: string
  /** The source's size, and its ETag (each part is pinned to it) when known. */
  size: number
  etag: string | undefined
  /** Bytes per part; raised when the source would need more than 10,000 parts. */
  partSize: number
  /** UploadPartCopy requests in flight. */
  concurrency: number
  signal: AbortSignal | undefined
}

/**
 * Copies `from` to `to` inside the bucket with UploadPartCopy (objects above 5 GiB, which
 * CopyObject refuses); aborts the upload (AbortMultipartUpload) when anything fails.
 * @internal
 */
export async function multipartCopy(o: MultipartCopyOptions): Promise<void> {
  const { client, from, to, size, etag, signal } = o
  const Bucket = o.bucket
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: to }), { abortSignal: signal })
  const UploadId = created.UploadId
  if (UploadId === undefined) throw new SnapshotError('IO_ERROR', 'CreateMultipartUpload returned no UploadId')
  const partSize = Math.min(MAX_PART_BYTES, Math.max(o.partSize, Math.ceil(size / MAX_PARTS)))
  const count = Math.max(1, Math.ceil(size / partSize))
  const CopySource = copySource(Bucket, from)
  const parts: CompletedPart[] = new Array(count)
  let next = 0
  let failed = false
  const worker = async () => {
    while (!failed && next < count) {
      const i = next++
      throwIfAborted(signal)
      const start = i * partSize
      const end = Math.min(size, start + partSize) - 1
      try {
        const res = await client.send(
          new UploadPartCopyCommand({
            Bucket, Key: to, UploadId, PartNumber: i + 1, CopySource,
            CopySourceRange: `bytes=${start}-${end}`,
            ...(etag === undefined ? {} : { CopySourceIfMatch: etag }),
          }),
          { abortSignal: signal },
        )
        parts[i] = { PartNumber: i + 1, ETag: res.CopyPartResult?.ETag }
      } catch (err) {
        failed = true
        throw err
      }
    }
  }
  try {
    const results = await Promise.allSettled(Array.from({ length: Math.min(o.concurrency, count) }, worker))
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (rejected !== undefined) throw rejected.reason
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }),
      { abortSignal: signal },
    )
  } catch (err) {
    // Not with the caller's signal: the upload must be aborted even when the caller gave up.
    await client.send(new AbortMultipartUploadCommand({ Bucket, Key: to, UploadId })).catch(() => undefined)
    throw err
  }
}
