import { SnapshotError } from '../errors.js'
import type { ObjectStore } from '../storage/object-store.js'
import type { AbortOptions } from '../types.js'
import { decodeManifest, type ManifestRecord } from '../format/manifest-codec.js'
import { decodeMetadata, type SnapshotMetadata } from './metadata-json.js'
import type { SnapshotRecord } from './snapshot-record.js'
import type { SnapshotSegment } from './snapshot-types.js'

/** Decoded manifests kept by default (they are immutable, so the cache never goes stale). */
export const DEFAULT_MANIFEST_CACHE_SIZE = 16_384

/** Options of {@link ManifestReader.read}. */
export interface ReadManifestOptions extends AbortOptions {
  /** Bypass the cache (the decoded result still refreshes it). */
  fresh?: boolean
}

/**
 * Reads and decodes manifests through a small LRU cache keyed by object key. A manifest
 * object is written once and never changes, so repeated GC passes and restores reuse
 * the decoded form.
 * @internal
 */
export class ManifestReader {
  readonly #objects: ObjectStore
  readonly #capacity: number
  readonly #cache = new Map<string, ManifestRecord>()

  constructor(objects: ObjectStore, capacity = DEFAULT_MANIFEST_CACHE_SIZE) {
    this.#objects = objects
    this.#capacity = capacity
  }

  /**
   * Decoded manifest, or undefined when the object is absent; `CORRUPT` when it does not
   * decode. `fresh` reads the stored object even when a decoded copy is cached (verify
   * checks what is stored, not what was).
   */
  async read(key: string, options: ReadManifestOptions = {}): Promise<ManifestRecord | undefined> {
    const hit = options.fresh === true ? undefined : this.#cache.get(key)
    if (hit !== undefined) {
      this.#cache.delete(key)
      this.#cache.set(key, hit)
      return hit
    }
    const bytes = await this.#objects.get(key, { signal: options.signal })
    if (bytes === undefined) {
      this.#cache.delete(key)
      return undefined
    }
    const decoded = decodeManifest(bytes, key)
    this.#cache.delete(key)
    this.#cache.set(key, decoded)
    if (this.#cache.size > this.#capacity) this.#cache.delete(this.#cache.keys().next().value as string)
    return decoded
  }

  /** Like {@link read}, but an absent manifest is `CORRUPT` too. */
  async require(key: string, options: AbortOptions = {}): Promise<ManifestRecord> {
    const m = await this.read(key, options)
    if (m === undefined) throw new SnapshotError('CORRUPT', `manifest ${key} is missing`, { details: { missing: [key] } })
    return m
  }

  /** Forgets `keys` (after their objects are deleted). */
  forget(keys: Iterable<string>): void {
    for (const key of keys) this.#cache.delete(key)
  }

  /**
   * Reads `keys` in order with up to `window` reads in flight. Absent manifests yield
   * undefined (callers decide whether that is corruption).
   */
  async *readAll(keys: readonly string[], window: number, options: ReadManifestOptions = {}): AsyncGenerator<[key: string, manifest: ManifestRecord | undefined]> {
    yield* prefetch(keys, window, async (key) => [key, await this.read(key, options)] as [string, ManifestRecord | undefined])
  }
}

/** Reads and decodes the metadata JSON of a record; `CORRUPT` when absent. */
export async function readMetadata(objects: ObjectStore, r: SnapshotRecord, options: AbortOptions = {}): Promise<SnapshotMetadata> {
  const bytes = await objects.get(r.metadataKey, options)
  if (bytes === undefined) {
    throw new SnapshotError('CORRUPT', `snapshot ${r.name}: metadata ${r.metadataKey} is missing`, { details: { missing: [r.metadataKey] } })
  }
  return decodeMetadata(bytes, r.metadataKey)
}

/**
 * Maps `items` through `fn` in order, keeping up to `window` calls in flight. A failure is
 * thrown when its turn comes; stopping early leaves no unhandled rejection.
 * @internal
 */
export async function* prefetch<T, R>(items: readonly T[], window: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const inflight: Promise<R>[] = []
  let next = 0
  const start = (): void => {
    const p = fn(items[next++])
    p.catch(() => undefined)
    inflight.push(p)
  }
  while (next < items.length && inflight.length < window) start()
  while (inflight.length > 0) {
    const value = await (inflight.shift() as Promise<R>)
    if (next < items.length) start()
    yield value
  }
}

/** The {@link SnapshotSegment} part of a manifest record. */
export function toSnapshotSegment(m: ManifestRecord): SnapshotSegment {
  return {
    id: m.id,
    partitionId: m.partitionId,
    channel: m.channel,
    level: m.level,
    numRows: m.numRows,
    binlogs: m.binlogs,
    statslogs: m.statslogs,
    deltalogs: m.deltalogs,
    bm25logs: m.bm25logs,
    indexes: m.indexes,
    textIndexes: m.textIndexes,
    jsonKeyIndexes: m.jsonKeyIndexes,
  }
}
