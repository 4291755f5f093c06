import { randomUUID } from 'node:crypto'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { validateObjectKey } from '../storage/keys-validate.js'
import type { ObjectInfo, ObjectStore } from '../storage/object-store.js'
import { guardObjectStore, type GuardedObjectStore } from '../storage/guarded-object-store.js'
import { readObjectStream, writeObjectStream } from '../storage/streaming.js'
import type { AbortOptions } from '../types.js'
import {
  decodeEntry,
  decodeSourcePointer,
  decodeRepositoryInfo,
  encodeRepositoryInfo,
  entryIdOf,
  entryKey,
  REPOSITORY_ENTRIES_PREFIX,
  REPOSITORY_FORMAT_VERSION,
  REPOSITORY_INFO_KEY,
  type EntryObject,
  type RepositoryEntry,
  type RepositoryInfo,
} from './repository-format.js'
import { sha256Hex } from './sha256.js'

/**
 * Normalizes a repository prefix: `''`, or a valid key (one trailing `/` is dropped).
 * `TypeError` for a non-string, `INVALID_ARGUMENT` for an invalid key.
 */
export function normalizePrefix(prefix: unknown): string {
  if (prefix === undefined) return ''
  if (typeof prefix !== 'string') throw new TypeError(`Expected \`prefix\` to be a string, got \`${prefix === null ? 'null' : typeof prefix}\``)
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  if (p !== '') validateObjectKey(p)
  return p
}

/** Throws a `TypeError` unless `store` looks like an ObjectStore. */
export function expectObjectStore(store: unknown, param: string): asserts store is ObjectStore {
  const s = store as Partial<ObjectStore> | null
  if (typeof s !== 'object' || s === null || typeof s.get !== 'function' || typeof s.put !== 'function' || typeof s.head !== 'function' || typeof s.list !== 'function' || typeof s.delete !== 'function' || typeof s.copy !== 'function') {
    throw new TypeError(`Expected \`${param}\` to be an ObjectStore, got \`${store === null ? 'null' : typeof store}\``)
  }
}

/**
 * A repository: the keys of {@link RepositoryEntry} and `repository.json` under a prefix
 * of a store. Every read of the repository goes through here and is validated.
 * @internal
 */
export class RepositoryStore {
  /** The store behind the core's checks (keys, signal, error mapping). */
  readonly store: GuardedObjectStore
  readonly prefix: string

  constructor(store: ObjectStore, prefix: string) {
    this.store = guardObjectStore(store)
    this.prefix = prefix
  }

  /** The store key of repository key `key`. */
  full(key: string): string {
    return this.prefix === '' ? key : `${this.prefix}/${key}`
  }

  get(key: string, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    return this.store.get(this.full(key), options)
  }

  head(key: string, options: AbortOptions = {}): Promise<ObjectInfo | undefined> {
    return this.store.head(this.full(key), options)
  }

  put(key: string, bytes: Uint8Array, options: AbortOptions = {}): Promise<ObjectInfo> {
    return this.store.put(this.full(key), bytes, options)
  }

  delete(keys: readonly string[], options: AbortOptions = {}): Promise<void> {
    return this.store.delete(keys.map((k) => this.full(k)), options)
  }

  /** Objects under repository prefix `under`, with repository keys. */
  async *list(under: string, options: AbortOptions = {}): AsyncGenerator<ObjectInfo> {
    const root = this.prefix === '' ? '' : `${this.prefix}/`
    for await (const info of this.store.list(root + under, options)) yield { ...info, key: info.key.slice(root.length) }
  }

  readStream(key: string, options: AbortOptions = {}): Promise<AsyncIterable<Uint8Array> | undefined> {
    return readObjectStream(this.store, this.full(key), options)
  }

  writeStream(key: string, body: AsyncIterable<Uint8Array>, options: AbortOptions & { sizeBytes?: number } = {}): Promise<ObjectInfo> {
    return writeObjectStream(this.store, this.full(key), body, options)
  }

  /** `repository.json`, or undefined when the prefix holds no repository. */
  async readInfo(options: AbortOptions = {}): Promise<RepositoryInfo | undefined> {
    const bytes = await this.get(REPOSITORY_INFO_KEY, options)
    return bytes === undefined ? undefined : decodeRepositoryInfo(bytes)
  }

  /** `repository.json`; `NOT_FOUND` when the prefix holds no repository. */
  async requireInfo(options: AbortOptions = {}): Promise<RepositoryInfo> {
    const info = await this.readInfo(options)
    if (info === undefined) throw new SnapshotError('NOT_FOUND', `repository not found: no ${REPOSITORY_INFO_KEY} under ${JSON.stringify(this.prefix)}`)
    return info
  }

  /** `repository.json`, written first when the prefix holds none. */
  async initInfo(now: number, options: AbortOptions = {}): Promise<RepositoryInfo> {
    const found = await this.readInfo(options)
    if (found !== undefined) return found
    const info: RepositoryInfo = { vecsnapRepository: REPOSITORY_FORMAT_VERSION, id: randomUUID(), createdAt: now }
    await this.put(REPOSITORY_INFO_KEY, encodeRepositoryInfo(info), options)
    // Two first exports racing: both read back whichever landed last.
    return (await this.readInfo(options)) ?? info
  }

  /** The entry `id`, validated; undefined when absent. */
  async readEntry(id: string, options: AbortOptions = {}): Promise<RepositoryEntry | undefined> {
    const bytes = await this.get(entryKey(id), options)
    return bytes === undefined ? undefined : decodeEntry(bytes, id)
  }

  /** The entry a source pointer (`sources/…`) names, validated; undefined when either is absent. */
  async readLatestEntry(pointerKey: string, options: AbortOptions = {}): Promise<RepositoryEntry | undefined> {
    const bytes = await this.get(pointerKey, options)
    return bytes === undefined ? undefined : this.readEntry(decodeSourcePointer(bytes, pointerKey), options)
  }

  /** The IDs of every entry, in key order. */
  async entryIds(options: AbortOptions = {}): Promise<string[]> {
    const ids: string[] = []
    for await (const info of this.list(REPOSITORY_ENTRIES_PREFIX, options)) {
      const id = entryIdOf(info.key)
      if (id !== undefined) ids.push(id)
    }
    return ids
  }

  /** Every entry, validated (`CORRUPT` for the first that is not). */
  async entries(options: AbortOptions = {}): Promise<RepositoryEntry[]> {
    const out: RepositoryEntry[] = []
    for (const id of await this.entryIds(options)) {
      throwIfAborted(options.signal)
      const e = await this.readEntry(id, options)
      if (e !== undefined) out.push(e)
    }
    return out
  }

  /** The bytes of a small file the entry names (metadata JSON, a manifest), checked: `CORRUPT` when missing or not the size and SHA-256 recorded. */
  async getVerified(o: EntryObject, options: AbortOptions = {}): Promise<Uint8Array> {
    const bytes = await this.get(o.key, options)
    if (bytes === undefined) throw new SnapshotError('CORRUPT', `repository file ${o.key} is missing`, { details: { missing: [o.key] } })
    if (bytes.byteLength !== o.size || sha256Hex(bytes) !== o.sha256) {
      throw new SnapshotError('CORRUPT', `repository file ${o.key} is not the one recorded (size or SHA-256 differs)`, { details: { corrupt: [o.key] } })
    }
    return bytes
  }
}
