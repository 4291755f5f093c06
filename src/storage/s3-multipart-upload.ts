import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3'
import { SnapshotError } from '../errors.js'

/** S3's limit on the parts of one multipart upload. */
const MAX_PARTS = 10_000

/** Options of {@link uploadStream}. */
export interface UploadStreamOptions {
  client: S3Client
  bucket: string
  /** The backend key. */
  key: string
  /** Bytes per part (the last may be shorter); at least 5 MiB but for a body that fits in one part. */
  partSize: number
  /** UploadPart requests in flight. */
  queueSize: number
  /** Cancels every request (but AbortMultipartUpload, which follows a cancel). */
  signal: AbortSignal
  /** Called once, on the first failure of a request (to cancel the others and stop the body). */
  onFailure: () => void
}

/** Whether the client adds CRC32 checksums to uploads (the SDK's default `WHEN_SUPPORTED`). */
async function withChecksums(client: S3Client): Promise<boolean> {
  const setting = (client as { config?: { requestChecksumCalculation?: unknown } }).config?.requestChecksumCalculation
  const value = typeof setting === 'function' ? await (setting as () => Promise<unknown>)() : setting
  return value === 'WHEN_SUPPORTED'
}

/**
 * Uploads `body` to S3 with bounded memory. Chunks are kept by reference (never modified)
 * until a part's worth has come: a body that ends within one part is one PutObject (of
 * its only chunk as it is, else of the chunks joined); a longer one a multipart upload
 * whose parts are the chunks copied into part buffers of `partSize` bytes (a part that is
 * one chunk is sent as it is), at most `queueSize` parts in flight and their buffers
 * reused. At most about `queueSize + 1` parts are held at once. The upload is completed
 * once every part is in (the object then appears whole). On any failure (the body's, a
 * request's, a cancel) the requests in flight are cancelled and awaited, and the
 * multipart upload is aborted (AbortMultipartUpload) before this rejects with the first
 * failure.
 * @internal
 */
export async function uploadStream(body: AsyncIterable<Uint8Array>, o: UploadStreamOptions): Promise<void> {
  const { client, bucket: Bucket, key: Key, partSize, queueSize, signal } = o
  const checksums = await withChecksums(client)
  const algorithm = checksums ? { ChecksumAlgorithm: 'CRC32' as const } : {}
  const send = <T>(command: unknown): Promise<T> => (client.send as (c: unknown, o: unknown) => Promise<T>)(command, { abortSignal: signal })
  let uploadId: string | undefined
  let partNumber = 0
  const parts: CompletedPart[] = []
  const inFlight = new Set<Promise<void>>()
  /** Part buffers whose part is in, for the next parts. */
  const spare: Uint8Array[] = []
  let failure: { err: unknown } | undefined
  const fail = (err: unknown): void => {
    if (failure !== undefined) return
    failure = { err }
    o.onFailure()
  }

  /** The chunks of a part as one Uint8Array, and the part buffer it lives in (to reuse), if any. */
  const assemble = (chunks: readonly Uint8Array[], length: number): { bytes: Uint8Array; buffer?: Uint8Array } => {
    if (chunks.length === 1) return { bytes: chunks[0] }
    const buffer = spare.pop() ?? Buffer.allocUnsafeSlow(partSize)
    let at = 0
    for (const chunk of chunks) {
      buffer.set(chunk, at)
      at += chunk.byteLength
    }
    return { bytes: buffer.subarray(0, length), buffer }
  }

  const startPart = async (chunks: readonly Uint8Array[], length: number): Promise<void> => {
    if (uploadId === undefined) {
      const created = await send<{ UploadId?: string }>(new CreateMultipartUploadCommand({ Bucket, Key, ...algorithm }))
      if (created.UploadId === undefined) throw new SnapshotError('IO_ERROR', 'CreateMultipartUpload returned no UploadId')
      uploadId = created.UploadId
    }
    const PartNumber = ++partNumber
    if (PartNumber > MAX_PARTS) {
      throw new SnapshotError('IO_ERROR', `the body needs more than ${MAX_PARTS} parts of ${partSize} bytes: pass its sizeBytes, or raise uploadPartSizeBytes`, { details: { partSize } })
    }
    const { bytes, buffer } = assemble(chunks, length)
    const request = send<{ ETag?: string; ChecksumCRC32?: string }>(
      new UploadPartCommand({ Bucket, Key, UploadId: uploadId, PartNumber, Body: bytes, ContentLength: length, ...algorithm }),
    ).then((res) => {
      if (res.ETag === undefined) throw new SnapshotError('IO_ERROR', `UploadPart ${PartNumber} returned no ETag`)
      parts[PartNumber - 1] = { PartNumber, ETag: res.ETag, ...(res.ChecksumCRC32 === undefined ? {} : { ChecksumCRC32: res.ChecksumCRC32 }) }
    })
    const settled: Promise<void> = request
      .then(
        () => undefined,
        (err: unknown) => fail(err),
      )
      .finally(() => {
        inFlight.delete(settled)
        if (buffer !== undefined) spare.push(buffer)
      })
    inFlight.add(settled)
    while (inFlight.size >= queueSize && failure === undefined) await Promise.race(inFlight)
    if (failure !== undefined) throw failure.err
  }

  try {
    let pending: Uint8Array[] = []
    let pendingBytes = 0
    for await (const chunk of body) {
      for (let rest = chunk; rest.byteLength > 0; ) {
        if (pendingBytes === partSize) {
          // A full part is sent once more bytes come: a body that ends here is one PutObject.
          await startPart(pending, pendingBytes)
          pending = []
          pendingBytes = 0
        }
        const n = Math.min(rest.byteLength, partSize - pendingBytes)
        pending.push(n === rest.byteLength ? rest : rest.subarray(0, n))
        pendingBytes += n
        rest = rest.subarray(n)
      }
    }
    if (uploadId === undefined) {
      const whole = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes)
      await send(new PutObjectCommand({ Bucket, Key, Body: whole, ContentLength: pendingBytes }))
      return
    }
    await startPart(pending, pendingBytes)
    while (inFlight.size > 0) await Promise.race(inFlight)
    if (failure !== undefined) throw failure.err
    await send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: parts } }))
  } catch (err) {
    fail(err)
    await Promise.all(inFlight)
    if (uploadId !== undefined) {
      // Without the signal: the upload must be aborted even when the caller gave up.
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId })).catch(() => undefined)
    }
    throw failure!.err
  }
}
