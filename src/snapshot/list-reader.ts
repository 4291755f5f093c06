import crypto from 'node:crypto'
import { SnapshotError, throwIfAborted } from '../errors.js'
import type { ObjectStore } from '../storage/object-store.js'
import { readObjectStream } from '../storage/streaming.js'
import type { AbortOptions } from '../types.js'
import { contentHash, ListManifestsParser, SnapshotList, type ListManifests, type ListRef } from './snapshot-list.js'

function listMissing(ref: ListRef): SnapshotError {
  return new SnapshotError('CORRUPT', `snapshot list ${ref.key} is missing`, { details: { missing: [ref.key] } })
}

function notTheRecordedList(ref: ListRef): SnapshotError {
  return new SnapshotError('CORRUPT', `snapshot list ${ref.key} is not the one its snapshot recorded (size or hash differs)`, { details: { corrupt: [ref.key] } })
}

/**
 * Reads the bytes of the list `ref` names, uncached, and checks them against `ref`.
 * `CORRUPT` when the object is missing or is not the content the record names (size or
 * hash).
 */
export async function readListBytes(objects: ObjectStore, ref: ListRef, options: AbortOptions = {}): Promise<Uint8Array> {
  throwIfAborted(options.signal)
  const bytes = await objects.get(ref.key, options)
  if (bytes === undefined) throw listMissing(ref)
  if (bytes.byteLength !== ref.size || contentHash(bytes) !== ref.hash) throw notTheRecordedList(ref)
  return bytes
}

/**
 * Reads what restore keeps of the list `ref` names (see `ListManifests`), uncached, a
 * chunk at a time: its bytes are parsed and hashed as they stream in, never held whole.
 * `CORRUPT` (`UNSUPPORTED_VERSION`) as {@link readList}; a list that is not the content the
 * record names is reported as such, as `readList` does, even when it does not parse.
 */
export async function readListManifests(objects: ObjectStore, ref: ListRef, options: AbortOptions = {}): Promise<ListManifests> {
  throwIfAborted(options.signal)
  const chunks = await readObjectStream(objects, ref.key, options)
  if (chunks === undefined) throw listMissing(ref)
  const hash = crypto.createHash('sha256')
  const parser = new ListManifestsParser(ref.key)
  let size = 0
  let failure: unknown
  for await (const chunk of chunks) {
    hash.update(chunk)
    size += chunk.byteLength
    if (failure !== undefined) continue
    try {
      parser.push(chunk)
    } catch (err) {
      // Reported once the hash tells whether this is the recorded list at all.
      failure = err
    }
  }
  if (size !== ref.size || hash.digest('base64url') !== ref.hash) throw notTheRecordedList(ref)
  if (failure !== undefined) throw failure
  return parser.end()
}

/**
 * Reads and decodes the list `ref` names, uncached. `CORRUPT` when the object is missing,
 * is not the content the record names (size or hash), or does not decode.
 */
export async function readList(objects: ObjectStore, ref: ListRef, options: AbortOptions = {}): Promise<SnapshotList> {
  return new SnapshotList(await readListBytes(objects, ref, options), ref.key)
}

/** Segment entries of decoded lists kept by default (about 50 bytes each). */
export const DEFAULT_LIST_CACHE_ENTRIES = 200_000

/**
 * Reads snapshot lists through a small LRU cache keyed by key and content hash: a list
 * object never changes once a record names it, so a cached list is never stale, and a
 * record naming other content (a create that ran again) misses the cache.
 * @internal
 */
export class ListReader {
  readonly #objects: ObjectStore
  readonly #capacity: number
  readonly #cache = new Map<string, SnapshotList>()
  #entries = 0
  /** Lists read from the store (not from the cache), for tests and benchmarks. */
  reads = 0

  constructor(objects: ObjectStore, capacity = DEFAULT_LIST_CACHE_ENTRIES) {
    this.#objects = objects
    this.#capacity = capacity
  }

  /**
   * The list `ref` names. `CORRUPT` when the object is missing, is not the content the
   * record names (size or hash), or does not decode.
   */
  async read(ref: ListRef, options: AbortOptions = {}): Promise<SnapshotList> {
    throwIfAborted(options.signal)
    const cacheKey = `${ref.key}#${ref.hash}`
    const hit = this.#cache.get(cacheKey)
    if (hit !== undefined) {
      this.#cache.delete(cacheKey)
      this.#cache.set(cacheKey, hit)
      return hit
    }
    this.reads++
    const list = await readList(this.#objects, ref, options)
    this.#cache.set(cacheKey, list)
    this.#entries += list.count
    for (const [k, v] of this.#cache) {
      if (this.#entries <= this.#capacity || this.#cache.size <= 1) break
      this.#cache.delete(k)
      this.#entries -= v.count
    }
    return list
  }
}
