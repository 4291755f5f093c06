import { SnapshotError, abortError, toIoError } from '../errors.js'

/**
 * Helpers shared by the streaming methods of the stores and of the core's wrapper
 * (`getStream`/`putStream`): argument checks, a checked body and error mapping of chunks.
 * @internal
 */

/** TypeErrors about the caller's body (a chunk that is not a Uint8Array): kept as they are, never turned into `IO_ERROR`. */
const misuse = new WeakSet<object>()

const show = (value: unknown): string => (typeof value === 'string' ? value : Object.prototype.toString.call(value))

/** Throws a `TypeError` unless `body` is an async iterable (a Node.js `Readable` is one). */
export function assertStreamBody(body: unknown): asserts body is AsyncIterable<Uint8Array> {
  if (body === null || typeof body !== 'object' || typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(`Expected \`body\` to be an async iterable of Uint8Array chunks, got \`${show(body)}\``)
  }
}

/** Throws a `TypeError` unless `sizeBytes` (the size of a `putStream` body) is absent or a non-negative safe integer. */
export function assertStreamSize(sizeBytes: unknown): asserts sizeBytes is number | undefined {
  if (sizeBytes !== undefined && !(typeof sizeBytes === 'number' && Number.isSafeInteger(sizeBytes) && sizeBytes >= 0)) {
    throw new TypeError(`Expected \`sizeBytes\` to be a non-negative safe integer, got \`${show(sizeBytes)}\``)
  }
}

/** Options of {@link checkedBody}. */
export interface CheckedBodyOptions {
  /** The key written, for messages. */
  key: string
  /** The declared length: another one throws `IO_ERROR` (after the last chunk, or as soon as it is exceeded). */
  sizeBytes?: number
  signal?: AbortSignal
  /** Called once when the body fails (before the failure is thrown), e.g. to cancel requests in flight. */
  onFailure?: (err: unknown) => void
}

/** What {@link checkedBody} has seen so far. */
export interface BodyProgress {
  /** Bytes yielded so far. */
  bytes: number
  /** The failure the body (or the check) threw, if any: what a failed upload rejects with. */
  failure?: unknown
}

function sizeMismatch(key: string, sizeBytes: number, actualBytes: number): SnapshotError {
  return new SnapshotError('IO_ERROR', `put ${JSON.stringify(key)} failed: the body was ${actualBytes > sizeBytes ? 'longer than' : `${actualBytes} bytes, not`} the declared ${sizeBytes} bytes`, {
    details: { key, sizeBytes, actualBytes },
  })
}

/**
 * Yields the chunks of `body`, checking as it goes: each chunk is a Uint8Array (a
 * `TypeError` otherwise), the `signal` has not fired (`ABORTED`), and the length matches
 * `sizeBytes` (`IO_ERROR`). Empty chunks are dropped. A failure is recorded in
 * `progress.failure` (the body's own error when the body threw) before it is thrown.
 */
export async function* checkedBody(body: AsyncIterable<Uint8Array>, options: CheckedBodyOptions, progress: BodyProgress = { bytes: 0 }): AsyncGenerator<Uint8Array> {
  const { key, sizeBytes, signal } = options
  const iterator = body[Symbol.asyncIterator]()
  let finished = false
  try {
    if (signal?.aborted) throw abortError(signal)
    for (;;) {
      const result = await nextOrAbort(iterator, signal)
      if (result.done === true) {
        finished = true
        break
      }
      const chunk = result.value
      if (!(chunk instanceof Uint8Array)) {
        const err = new TypeError(`Expected every chunk of \`body\` to be a Uint8Array, got \`${show(chunk)}\``)
        misuse.add(err)
        throw err
      }
      if (chunk.byteLength === 0) continue
      progress.bytes += chunk.byteLength
      if (sizeBytes !== undefined && progress.bytes > sizeBytes) throw sizeMismatch(key, sizeBytes, progress.bytes)
      yield chunk
    }
    if (signal?.aborted) throw abortError(signal)
    if (sizeBytes !== undefined && progress.bytes !== sizeBytes) throw sizeMismatch(key, sizeBytes, progress.bytes)
  } catch (err) {
    if (progress.failure === undefined) {
      progress.failure = err
      options.onFailure?.(err)
    }
    throw err
  } finally {
    // Stopped early, failed or aborted: let the body release what it holds (not awaited: a
    // stalled body may never answer).
    if (!finished) void stopSource(body, iterator)
  }
}

/**
 * `iterator.next()`, or `ABORTED` as soon as `signal` fires, even while the body is
 * stalled (its pending `next()` is left to settle on its own).
 */
function nextOrAbort(iterator: AsyncIterator<Uint8Array>, signal: AbortSignal | undefined): Promise<IteratorResult<Uint8Array>> {
  if (signal === undefined) return iterator.next()
  if (signal.aborted) return Promise.reject(abortError(signal))
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    iterator.next().then(
      (result) => {
        signal.removeEventListener('abort', onAbort)
        resolve(result)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/**
 * The error a failed streaming call rejects with: a `TypeError` about the body's chunks
 * as it is, else `map(err)` (a `SnapshotError` stays as it is there too).
 */
export function streamFailure(err: unknown, what: string, signal: AbortSignal | undefined, map: (err: unknown, what: string, signal?: AbortSignal) => SnapshotError = toIoError): Error {
  if (err instanceof TypeError && misuse.has(err)) return err
  return map(err, what, signal)
}

/**
 * `source` with its failures mapped by `map` (`IO_ERROR`, or `ABORTED` once `signal`
 * fired) and the signal checked before each chunk. Stopping early (`return()`) stops
 * `source` (see {@link stopSource}), so it releases what it holds even when iteration
 * never started.
 */
export function mappedChunks(
  source: AsyncIterable<Uint8Array>,
  what: string,
  signal: AbortSignal | undefined,
  map: (err: unknown, what: string, signal?: AbortSignal) => SnapshotError = toIoError,
): AsyncIterable<Uint8Array> & AsyncIterator<Uint8Array> {
  let inner: AsyncIterator<Uint8Array> | undefined
  const iterator = () => (inner ??= source[Symbol.asyncIterator]())
  const release = () => stopSource(source, inner)
  let done = false
  return {
    [Symbol.asyncIterator]() {
      return this
    },
    async next(): Promise<IteratorResult<Uint8Array>> {
      if (done) return { done: true, value: undefined }
      if (signal?.aborted) {
        done = true
        await release()
        throw abortError(signal)
      }
      try {
        const result = await iterator().next()
        if (result.done === true) done = true
        return result
      } catch (err) {
        done = true
        throw map(err, what, signal)
      }
    },
    async return(): Promise<IteratorResult<Uint8Array>> {
      if (!done) {
        done = true
        await release()
      }
      return { done: true, value: undefined }
    },
  }
}

/**
 * Stops `source`: returns its `iterator` when iteration started, else asks a fresh one to
 * stop; and destroys it when it is a stream (`destroy()`), since the iterator of a Node.js
 * `Readable` that never started does not (its `return()` skips the cleanup). Best effort;
 * resolves once the iterator answered (a stalled generator may never answer: callers that
 * must not wait do not await it).
 */
export async function stopSource(source: AsyncIterable<Uint8Array>, iterator?: AsyncIterator<Uint8Array>): Promise<void> {
  const stream = source as { destroy?: () => void; destroyed?: boolean }
  try {
    if (iterator !== undefined) await iterator.return?.()
    else if (typeof stream.destroy !== 'function') await source[Symbol.asyncIterator]().return?.()
  } catch {
    // Best effort: the caller already has its answer.
  }
  if (typeof stream.destroy === 'function' && stream.destroyed !== true) stream.destroy()
}

/**
 * Releases a body a failed write may not have read to the end, or at all: stops the
 * checked wrapper (which stops the body it started), then the body itself (see
 * {@link stopSource}). Not awaited: a stalled body may never answer.
 */
export function releaseBody(body: AsyncIterable<Uint8Array>, checked?: AsyncGenerator<Uint8Array>): void {
  checked?.return(undefined).catch(() => undefined)
  void stopSource(body)
}

/** One chunk as an async iterable (the fallback of `getStream` over `get`). */
export async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  if (bytes.byteLength > 0) yield bytes
}

/** Collects `body` into one Uint8Array (the fallback of `putStream` over `put`: it holds the object in memory). */
export async function collectBody(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let length = 0
  for await (const chunk of body) {
    chunks.push(chunk)
    length += chunk.byteLength
  }
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(length)
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.byteLength
  }
  return out
}
