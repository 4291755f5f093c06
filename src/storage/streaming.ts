import type { AbortOptions } from '../types.js'
import { guardObjectStore } from './guarded-object-store.js'
import type { ObjectInfo, ObjectStore, PutStreamOptions } from './object-store.js'

/**
 * The bytes of `key` in `store` as a stream of chunks, or `undefined` when it is absent:
 * the store's `getStream` when it has one, else its `get` as one chunk (the whole object in
 * memory; see {@link ObjectStore}). Consume the stream to the end or stop early (`break`,
 * `return()`): either releases what the store holds.
 *
 * Rejects (and the stream throws while iterating) with `ABORTED` once `signal` fires, and
 * `IO_ERROR` for backend failures; an invalid key rejects with `INVALID_ARGUMENT`.
 *
 * @example
 * const chunks = await readObjectStream(source, 'files/seg-1/data')
 * if (chunks !== undefined) await writeObjectStream(target, 'backup/files/seg-1/data', chunks)
 */
export function readObjectStream(store: ObjectStore, key: string, options: AbortOptions = {}): Promise<AsyncIterable<Uint8Array> | undefined> {
  return guardObjectStore(store).getStream(key, options)
}

/**
 * Writes the streamed `body` at `key` in `store`, replacing an existing object atomically;
 * resolves what was written. Uses the store's `putStream` when it has one, else collects
 * the body and calls `put` (the whole object in memory; see {@link ObjectStore}).
 *
 * Pass `sizeBytes` when the length is known: it is checked (`IO_ERROR` and nothing written
 * when the body is another length) and lets a store pick its upload (one PutObject or a
 * multipart upload on S3). When the body throws, `signal` fires or the backend fails,
 * nothing is left under the key; it rejects with the body's own `SnapshotError`, else
 * `ABORTED` or `IO_ERROR`. A chunk that is not a Uint8Array rejects with a `TypeError`.
 */
export function writeObjectStream(store: ObjectStore, key: string, body: AsyncIterable<Uint8Array>, options: PutStreamOptions = {}): Promise<ObjectInfo> {
  return guardObjectStore(store).putStream(key, body, options)
}
