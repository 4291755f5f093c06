import { createHash, webcrypto } from 'node:crypto'
import { SnapshotError } from '../errors.js'

/**
 * SHA-256 of what exports, imports and verifications stream.
 *
 * A body that arrives as **one chunk** (a filesystem store streams a file of up to 4 MiB
 * that way) is hashed with WebCrypto's `digest`, which runs on libuv's thread pool: the
 * event loop, which also drives the uploads (and, embedded, the host's own work), pays
 * only for a copy of the bytes. Hashing 1 GiB in 1 MiB files took about 530 ms of the
 * event loop with `createHash` and about 125 ms this way (measured on the bench machine).
 * A body of several chunks is hashed incrementally with `createHash`, chunk by chunk, so
 * nothing holds a whole large file.
 * @internal
 */

/** SHA-256 (hex) of bytes, on the event loop: for small objects (manifests, entries). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** SHA-256 (hex) of bytes, computed on the thread pool. */
async function sha256HexOffLoop(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', bytes)).toString('hex')
}

/** A body read up to its second chunk: its only chunk (`whole`), or all its chunks again (`chunks`). */
type Peeked = { whole: Uint8Array; chunks?: undefined } | { whole?: undefined; chunks: AsyncIterable<Uint8Array> }

async function peek(body: AsyncIterable<Uint8Array>): Promise<Peeked> {
  const it = body[Symbol.asyncIterator]()
  const first = await it.next()
  if (first.done === true) return { whole: new Uint8Array(0) }
  const second = await it.next()
  if (second.done === true) return { whole: first.value }
  return { chunks: replay(first.value, second.value, it) }
}

/** `first`, `second`, then the rest of `it`; closes `it` when the consumer stops early. */
async function* replay(first: Uint8Array, second: Uint8Array, it: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  let done = false
  try {
    yield first
    yield second
    for (let r = await it.next(); r.done !== true; r = await it.next()) yield r.value
    done = true
  } finally {
    if (!done) await it.return?.()
  }
}

/**
 * SHA-256 (hex) and size of a stream, read to its end. `whole` is the body's only chunk
 * when it came as one (the caller may upload those bytes instead of reading them again).
 */
export async function hashStream(body: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number; whole?: Uint8Array }> {
  const p = await peek(body)
  if (p.whole !== undefined) return { sha256: await sha256HexOffLoop(p.whole), size: p.whole.byteLength, whole: p.whole }
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of p.chunks) {
    hash.update(chunk)
    size += chunk.byteLength
  }
  return { sha256: hash.digest('hex'), size }
}

function tooLarge(what: string, expected: { size: number }): SnapshotError {
  return new SnapshotError('CORRUPT', `${what} is larger than the ${expected.size} bytes recorded`, { details: { corrupt: [what] } })
}

function notRecorded(what: string, n: number, expected: { size: number; sha256: string }, sha256: string): SnapshotError | undefined {
  if (n !== expected.size) return new SnapshotError('CORRUPT', `${what} is ${n} bytes, ${expected.size} recorded`, { details: { corrupt: [what] } })
  if (sha256 !== expected.sha256) return new SnapshotError('CORRUPT', `${what} does not have the SHA-256 recorded`, { details: { corrupt: [what] } })
  return undefined
}

/**
 * A hashing pass-through: yields `body` unchanged and throws `CORRUPT` unless it is
 * `expected.size` bytes with SHA-256 `expected.sha256`. Given to `writeObjectStream` as
 * the body, a mismatch makes the write fail with nothing left under the key, so a file
 * only ever lands under its key with the content the entry names. A body of one chunk is
 * checked before that chunk is yielded (nothing wrong is even sent); a longer one at its
 * end.
 */
export async function* verifiedBody(body: AsyncIterable<Uint8Array>, expected: { size: number; sha256: string }, what: string): AsyncGenerator<Uint8Array> {
  const p = await peek(body)
  if (p.whole !== undefined) {
    if (p.whole.byteLength > expected.size) throw tooLarge(what, expected)
    const wrong = notRecorded(what, p.whole.byteLength, expected, await sha256HexOffLoop(p.whole))
    if (wrong !== undefined) throw wrong
    if (p.whole.byteLength > 0) yield p.whole
    return
  }
  const hash = createHash('sha256')
  let n = 0
  for await (const chunk of p.chunks) {
    n += chunk.byteLength
    if (n > expected.size) throw tooLarge(what, expected)
    hash.update(chunk)
    yield chunk
  }
  const wrong = notRecorded(what, n, expected, hash.digest('hex'))
  if (wrong !== undefined) throw wrong
}
