import { SnapshotError } from '../errors.js'
import type { AbortOptions } from '../types.js'

/** One write of a {@link MetaStore.batch}. */
export type MetaOperation =
  | { type: 'put'; key: string; value: string }
  | { type: 'del'; key: string }

/**
 * A precondition of a conditional batch: the batch applies only if `key` still holds
 * `value` (`undefined` = the key must be absent). Compare-and-batch is how vecsnap
 * keeps several managers on one store from losing updates.
 */
export interface MetaExpectation {
  key: string
  value: string | undefined
}

/** Options of {@link MetaStore.batch}. */
export interface MetaBatchOptions extends AbortOptions {
  /**
   * Apply the batch only if every expectation holds, atomically with the writes.
   * Otherwise reject with a `SnapshotError` of code `FAILED_PRECONDITION` whose
   * `details.conflict` is `true` (see {@link isMetaConflict}) and write nothing.
   */
  expect?: readonly MetaExpectation[]
}

/** A key range for {@link MetaStore.iterate}, with Level's option names. Keys compare as UTF-8 strings. */
export interface MetaRange {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
  /** At most this many entries. Default: no limit. */
  limit?: number
  /** Descending order. Default: false. */
  reverse?: boolean
}

/** What an adapter can do beyond the required methods. */
export interface MetaStoreCapabilities {
  /**
   * True when `expect` in {@link MetaStore.batch} is checked by the backend itself across
   * processes (etcd). False when it only holds inside one process (LevelDB, memory),
   * which is then the only safe way to run the store.
   */
  readonly sharedConditionalBatch: boolean
  /**
   * Largest number of operations one batch may carry, counted the way the backend counts
   * them (etcd: the larger of the compares and the writes); Infinity when unbounded.
   * vecsnap itself never issues more than `MAX_BATCH_OPS` (64).
   */
  readonly maxBatchOps: number
}

/** Lifecycle of a store, as in abstract-level. */
export type StoreStatus = 'opening' | 'open' | 'closing' | 'closed'

/**
 * The metadata port: an ordered string→string key-value store with atomic batches.
 *
 * Adapters: {@link LevelMetaStore} (classic-level on disk), {@link MemoryMetaStore}
 * (memory-level), `EtcdMetaStore` (vecsnap/etcd). Write your own and check it with
 * `metaStoreSuite` from `vecsnap/conformance` (see README, "Storage adapters").
 *
 * Rules every adapter follows:
 * - `get` of an absent key resolves `undefined`; absence is never an error.
 * - `batch` applies all operations or none; operations apply in order (a later
 *   op on the same key wins).
 * - `iterate` yields `[key, value]` pairs ordered by key (UTF-8 byte order), honouring the range.
 * - Any method but `open` on a store that is not open rejects with `NOT_OPEN`.
 * - A fired `signal` rejects with `ABORTED`; backend failures reject with `IO_ERROR`.
 * - `open` and `close` are idempotent.
 */
export interface MetaStore {
  /** What the store can do beyond the required methods. */
  readonly capabilities: MetaStoreCapabilities
  /** Lifecycle state, as in abstract-level. */
  readonly status: StoreStatus
  /** Opens the store; idempotent. */
  open(options?: AbortOptions): Promise<void>
  /** Closes the store; idempotent. */
  close(): Promise<void>
  /** The value of `key`, or `undefined` when it is absent (never an error). */
  get(key: string, options?: AbortOptions): Promise<string | undefined>
  /** Applies every operation or none, in order; with `expect`, only if every expectation holds (else the conflict rejection). */
  batch(operations: readonly MetaOperation[], options?: MetaBatchOptions): Promise<void>
  /** `[key, value]` pairs in key order (UTF-8 byte order) within `range`. */
  iterate(range?: MetaRange, options?: AbortOptions): AsyncIterable<[key: string, value: string]>
}

/**
 * The most operations (puts plus deletes) one batch vecsnap issues carries, whatever the
 * number of segments, snapshots, indexes or jobs (SPEC section 11): half of etcd's default
 * `--max-txn-ops` (128), so vecsnap runs on a cluster started with no flags.
 */
export const MAX_BATCH_OPS = 64

/** The most expectations one batch vecsnap issues carries (see {@link MAX_BATCH_OPS}). */
export const MAX_BATCH_EXPECTATIONS = 64

/** The most bytes of keys and values one batch vecsnap issues carries: far below etcd's default `--max-request-bytes` (1.5 MiB). */
export const MAX_BATCH_BYTES = 256 * 1024

/** True when `err` is the conflict rejection of a conditional batch. */
export function isMetaConflict(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { code?: unknown }).code === 'FAILED_PRECONDITION' &&
    (err as { details?: { conflict?: unknown } }).details?.conflict === true
  )
}

/** Builds the conflict rejection of a conditional batch (what `isMetaConflict` recognizes). */
export function metaConflictError(keys: readonly string[]): SnapshotError {
  const shown = keys.slice(0, 5).map((k) => JSON.stringify(k)).join(', ')
  const more = keys.length > 5 ? ` and ${keys.length - 5} more` : ''
  return new SnapshotError('FAILED_PRECONDITION', `conditional batch conflict: ${shown}${more} changed`, {
    details: { conflict: true, keys: [...keys] },
  })
}

/**
 * Returns a string greater, in UTF-8 byte order, than every key that starts with `prefix`
 * (`prefix` + U+10FFFF, the highest code point; only keys continuing with U+10FFFF itself,
 * a noncharacter, fall outside).
 */
export function prefixEnd(prefix: string): string {
  return prefix + '\u{10FFFF}'
}

/** A range covering exactly the keys that start with `prefix`. */
export function prefixRange(prefix: string): MetaRange {
  return { gte: prefix, lt: prefixEnd(prefix) }
}
