import { SnapshotError, toIoError } from '../errors.js'

/** The fields of an AWS SDK v3 service error that the mapping reads. */
interface S3ErrorLike {
  name?: string
  Code?: string
  message?: string
  $metadata?: { httpStatusCode?: number; requestId?: string }
  $retryable?: { throttling?: boolean }
}

/** S3 error names meaning "this key has no object". */
const ABSENT = new Set(['NoSuchKey', 'NotFound'])
/** Error names and HTTP statuses S3 (and compatible stores) use for "slow down". */
const THROTTLED = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException', 'RequestThrottled', 'ServiceUnavailable'])
const THROTTLED_STATUS = new Set([429, 503])

function fields(err: unknown): S3ErrorLike {
  return typeof err === 'object' && err !== null ? (err as S3ErrorLike) : {}
}

/** The S3 error code of `err` (`NoSuchKey`, `AccessDenied`, …), if it has one. */
export function s3ErrorCode(err: unknown): string | undefined {
  const e = fields(err)
  return e.Code ?? e.name
}

/**
 * True when `err` says the object does not exist (`NoSuchKey`, or a bodiless 404 from
 * HeadObject). A missing bucket (`NoSuchBucket`) is not absence: it is an `IO_ERROR`.
 */
export function isS3NotFound(err: unknown): boolean {
  const code = s3ErrorCode(err)
  if (code !== undefined && ABSENT.has(code)) return true
  return fields(err).$metadata?.httpStatusCode === 404 && code !== 'NoSuchBucket' && code !== 'NoSuchUpload'
}

/** Error names S3-compatible stores use when a CopyObject source is above their 5 GiB limit. */
const COPY_REJECTED = new Set(['InvalidRequest', 'EntityTooLarge', 'InvalidArgument'])

/**
 * True when `err` may be a CopyObject rejected because the source is too large for one
 * request (above 5 GiB): AWS answers `InvalidRequest`, others `EntityTooLarge`, all with
 * HTTP 400. Deliberately broad (any 400 but absence and throttling): the caller only uses
 * it to decide whether a HeadObject is worth sending to learn the real size.
 */
export function mayBeS3CopyTooLarge(err: unknown): boolean {
  if (isS3NotFound(err) || isS3Throttled(err)) return false
  const code = s3ErrorCode(err)
  return (code !== undefined && COPY_REJECTED.has(code)) || fields(err).$metadata?.httpStatusCode === 400
}

/** True when `err` is S3 asking the caller to slow down (SlowDown, throttling, 429, 503). */
export function isS3Throttled(err: unknown): boolean {
  const e = fields(err)
  const code = s3ErrorCode(err)
  return (code !== undefined && THROTTLED.has(code)) || e.$retryable?.throttling === true || THROTTLED_STATUS.has(e.$metadata?.httpStatusCode ?? 0)
}

/**
 * Maps an S3 failure to the `SnapshotError` the port rejects with; the one place where
 * S3ObjectStore interprets backend errors.
 *
 * - A fired `signal` or an `AbortError` → `ABORTED`.
 * - Everything else (AccessDenied, SlowDown/throttling, 5xx, network errors, a missing
 *   bucket, …) → `IO_ERROR` with the backend error as `cause` and `details`
 *   `{ s3Code, httpStatusCode, requestId, throttled }`.
 *
 * Absence (`NoSuchKey`/`NotFound`, see {@link isS3NotFound}) is handled by the callers,
 * which turn it into `undefined` (get, head) or `NOT_FOUND` (copy source).
 *
 * @param what The operation, for the message, e.g. `put "files/a"`.
 */
export function mapS3Error(err: unknown, what: string, signal?: AbortSignal): SnapshotError {
  if (err instanceof SnapshotError) return err
  const e = fields(err)
  if (signal?.aborted || e.name === 'AbortError') return toIoError(err, what, signal)
  const s3Code = s3ErrorCode(err)
  const httpStatusCode = e.$metadata?.httpStatusCode
  const throttled = isS3Throttled(err)
  const parts = [s3Code, httpStatusCode === undefined ? undefined : `HTTP ${httpStatusCode}`].filter(Boolean).join(', ')
  const detail = e.message || (err instanceof Error ? err.name : String(err))
  return new SnapshotError('IO_ERROR', `${what} failed${parts ? ` (${parts})` : ''}: ${detail}${throttled ? ' (throttled, retry later)' : ''}`, {
    cause: err,
    details: { s3Code, httpStatusCode, requestId: e.$metadata?.requestId, throttled },
  })
}

/** One failed key of a DeleteObjects response. */
export interface S3DeleteError {
  Key?: string
  Code?: string
  Message?: string
}

/**
 * Maps the per-key `Errors` of a DeleteObjects response to one `IO_ERROR` (absent keys,
 * `NoSuchKey`, are not errors: delete is idempotent), or `undefined` when none failed.
 *
 * @param toKey Turns a backend key back into the store's key, for the report.
 */
export function mapS3DeleteErrors(errors: readonly S3DeleteError[] | undefined, batchSize: number, toKey: (backendKey: string) => string): SnapshotError | undefined {
  const failed = (errors ?? []).filter((e) => e.Code !== 'NoSuchKey')
  if (failed.length === 0) return undefined
  const list = failed.map((e) => ({ key: toKey(e.Key ?? ''), s3Code: e.Code, message: e.Message }))
  const first = list[0]
  const throttled = failed.some((e) => e.Code !== undefined && THROTTLED.has(e.Code))
  return new SnapshotError('IO_ERROR', `delete failed for ${failed.length} of ${batchSize} objects, first ${JSON.stringify(first.key)}: ${first.s3Code ?? 'error'} ${first.message ?? ''}`.trim(), {
    details: { errors: list, throttled },
  })
}
