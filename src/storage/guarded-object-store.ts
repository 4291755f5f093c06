import { throwIfAborted, toIoError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { assertBody, assertCopyMode, assertCopySizeHint, assertKeyList, validateObjectKey, validatePrefix } from './keys-validate.js'
import type { CopyOptions, ObjectInfo, ObjectStore, ObjectStoreCapabilities, PutOptions, PutStreamOptions } from './object-store.js'
import { assertStreamBody, assertStreamSize, checkedBody, collectBody, mappedChunks, oneChunk, releaseBody, streamFailure } from './stream-body.js'

/**
 * What {@link guardObjectStore} returns: an ObjectStore whose streaming methods are always
 * there (the adapter's own, or the in-memory fallback over `get`/`put`).
 */
export type GuardedObjectStore = ObjectStore & Required<Pick<ObjectStore, 'getStream' | 'putStream'>>

/**
 * The ObjectStore the core uses: an adapter behind key validation, signal checks and
 * error mapping, so adapters stay thin (as abstract-level's public/private split).
 */
class Guarded implements GuardedObjectStore {
  readonly #inner: ObjectStore

  constructor(inner: ObjectStore) {
    this.#inner = inner
  }

  get capabilities(): ObjectStoreCapabilities {
    return this.#inner.capabilities
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<ObjectInfo> {
    validateObjectKey(key)
    assertBody(body)
    throwIfAborted(options.signal)
    try {
      return await this.#inner.put(key, body, options)
    } catch (err) {
      throw toIoError(err, `put ${JSON.stringify(key)}`, options.signal)
    }
  }

  async get(key: string, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    validateObjectKey(key)
    throwIfAborted(options.signal)
    try {
      return await this.#inner.get(key, options)
    } catch (err) {
      throw toIoError(err, `get ${JSON.stringify(key)}`, options.signal)
    }
  }

  /**
   * The adapter's `getStream`, its chunks' failures mapped (`IO_ERROR`, `ABORTED`); for an
   * adapter without one, `get` as one chunk (the whole object in memory).
   */
  async getStream(key: string, options: AbortOptions = {}): Promise<AsyncIterable<Uint8Array> | undefined> {
    validateObjectKey(key)
    const { signal } = options
    throwIfAborted(signal)
    const what = `get ${JSON.stringify(key)}`
    let source: AsyncIterable<Uint8Array> | undefined
    try {
      if (this.#inner.getStream === undefined) {
        const bytes = await this.#inner.get(key, options)
        return bytes === undefined ? undefined : oneChunk(bytes)
      }
      source = await this.#inner.getStream(key, options)
    } catch (err) {
      throw toIoError(err, what, signal)
    }
    return source === undefined ? undefined : mappedChunks(source, what, signal)
  }

  /**
   * The adapter's `putStream` over the checked body (chunk types, `sizeBytes`, `signal`);
   * for an adapter without one, the body collected in memory, then `put`.
   */
  async putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutStreamOptions = {}): Promise<ObjectInfo> {
    validateObjectKey(key)
    assertStreamBody(body)
    assertStreamSize(options.sizeBytes)
    const { signal } = options
    throwIfAborted(signal)
    const checked = checkedBody(body, { key, sizeBytes: options.sizeBytes, signal })
    try {
      if (this.#inner.putStream !== undefined) return await this.#inner.putStream(key, checked, options)
      const bytes = await collectBody(checked)
      throwIfAborted(signal)
      return await this.#inner.put(key, bytes, options)
    } catch (err) {
      releaseBody(body, checked)
      throw streamFailure(err, `put ${JSON.stringify(key)}`, signal)
    }
  }

  async head(key: string, options: AbortOptions = {}): Promise<ObjectInfo | undefined> {
    validateObjectKey(key)
    throwIfAborted(options.signal)
    try {
      return await this.#inner.head(key, options)
    } catch (err) {
      throw toIoError(err, `head ${JSON.stringify(key)}`, options.signal)
    }
  }

  async *list(prefix: string, options: AbortOptions = {}): AsyncGenerator<ObjectInfo> {
    validatePrefix(prefix)
    throwIfAborted(options.signal)
    try {
      for await (const info of this.#inner.list(prefix, options)) {
        throwIfAborted(options.signal)
        yield info
      }
    } catch (err) {
      throw toIoError(err, `list ${JSON.stringify(prefix)}`, options.signal)
    }
  }

  async copy(fromKey: string, toKey: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    validateObjectKey(fromKey)
    validateObjectKey(toKey)
    assertCopyMode(options.mode)
    assertCopySizeHint(options.sizeBytes)
    throwIfAborted(options.signal)
    try {
      return await this.#inner.copy(fromKey, toKey, options)
    } catch (err) {
      throw toIoError(err, `copy ${JSON.stringify(fromKey)} to ${JSON.stringify(toKey)}`, options.signal)
    }
  }

  async delete(keys: readonly string[], options: AbortOptions = {}): Promise<void> {
    assertKeyList(keys)
    throwIfAborted(options.signal)
    if (keys.length === 0) return
    try {
      await this.#inner.delete(keys, options)
    } catch (err) {
      throw toIoError(err, `delete of ${keys.length} objects`, options.signal)
    }
  }

  async removeStaleTempFiles(options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal)
    if (this.#inner.removeStaleTempFiles === undefined) return 0
    try {
      return await this.#inner.removeStaleTempFiles(options)
    } catch (err) {
      throw toIoError(err, 'removing stale temporary files', options.signal)
    }
  }

  async close(): Promise<void> {
    try {
      await this.#inner.close?.()
    } catch (err) {
      throw toIoError(err, 'closing the object store')
    }
  }
}

const guarded = new WeakMap<ObjectStore, GuardedObjectStore>()
const wrappers = new WeakSet<ObjectStore>()

/**
 * Wraps `store` once for the core: rejects invalid keys and prefixes with
 * `INVALID_ARGUMENT` (before touching the adapter), calls whose `signal` already fired
 * with `ABORTED`, and turns any failure that is not a `SnapshotError` into `IO_ERROR`
 * (the failure is the `cause`). Idempotent: a guarded store is returned as is, and
 * guarding the same store twice returns the same wrapper.
 *
 * The wrapper always has `getStream` and `putStream`: the adapter's, or for an adapter
 * without them the fallback over `get` and `put`, which holds the whole object in memory.
 */
export function guardObjectStore(store: ObjectStore): GuardedObjectStore {
  if (wrappers.has(store)) return store as GuardedObjectStore
  let wrapper = guarded.get(store)
  if (wrapper === undefined) {
    wrapper = new Guarded(store)
    wrappers.add(wrapper)
    guarded.set(store, wrapper)
  }
  return wrapper
}
