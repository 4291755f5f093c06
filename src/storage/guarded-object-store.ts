import { throwIfAborted, toIoError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { assertBody, assertCopyMode, assertCopySizeHint, assertKeyList, validateObjectKey, validatePrefix } from './keys-validate.js'
import type { CopyOptions, ObjectInfo, ObjectStore, ObjectStoreCapabilities, PutOptions } from './object-store.js'

/**
 * The ObjectStore the core uses: an adapter behind key validation, signal checks and
 * error mapping, so adapters stay thin (as abstract-level's public/private split).
 */
class GuardedObjectStore implements ObjectStore {
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

const guarded = new WeakMap<ObjectStore, ObjectStore>()
const wrappers = new WeakSet<ObjectStore>()

/**
 * Wraps `store` once for the core: rejects invalid keys and prefixes with
 * `INVALID_ARGUMENT` (before touching the adapter), calls whose `signal` already fired
 * with `ABORTED`, and turns any failure that is not a `SnapshotError` into `IO_ERROR`
 * (the failure is the `cause`). Idempotent: a guarded store is returned as is, and
 * guarding the same store twice returns the same wrapper.
 */
export function guardObjectStore(store: ObjectStore): ObjectStore {
  if (wrappers.has(store)) return store
  let wrapper = guarded.get(store)
  if (wrapper === undefined) {
    wrapper = new GuardedObjectStore(store)
    wrappers.add(wrapper)
    guarded.set(store, wrapper)
  }
  return wrapper
}
