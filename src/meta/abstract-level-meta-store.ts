import type { AbstractLevel } from 'abstract-level'
import { SnapshotError, throwIfAborted, toIoError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { Mutex } from '../util/mutex.js'
import { assertMetaExpectations, assertMetaOperations } from './guarded-meta-store.js'
import { metaConflictError, type MetaBatchOptions, type MetaOperation, type MetaRange, type MetaStore, type MetaStoreCapabilities, type StoreStatus } from './meta-store.js'

/** Any abstract-level database; vecsnap reads and writes it with utf8 keys and values. */
export type AnyAbstractLevel = AbstractLevel<any, any, any>

const UTF8 = { keyEncoding: 'utf8', valueEncoding: 'utf8' } as const
const CAPABILITIES: MetaStoreCapabilities = Object.freeze({ sharedConditionalBatch: false, maxBatchOps: Infinity })
const PAGE_SIZE = 256

/**
 * Keys whose last written value the store keeps for `get` (see `AbstractLevelMetaStore.get`):
 * room for the keys a restore reads back (its job, its running tasks, counters) with 8 tasks
 * in flight. Only keys read before they are written are kept (see `#wanted`): every value
 * kept outlives a scavenge and is promoted, so keeping each written key (a segment record,
 * a progress marker) turned the records a restore writes into old-space garbage.
 */
const RECENT_KEYS = 512

/** Keys read lately (at most this many) whose next write the store keeps (see `#wanted`). */
const WANTED_KEYS = 512

/** Longer values are not kept (a write of one forgets the key); with `RECENT_KEYS`, at most 2 MB are kept. */
const RECENT_VALUE_CHARS = 4096

/** Any UTF-16 surrogate (see `#remember`). */
const SURROGATE = /[\uD800-\uDFFF]/

/**
 * Writes `operations` as one chained batch (atomic, like an array batch). Cheaper per
 * operation than `db.batch(array)`: no copy of each operation object with the batch
 * options spread in, and classic-level hands each operation to LevelDB's write batch
 * directly instead of reading them back out of an array of objects. Only the fields
 * vecsnap defines are passed on (an extra `sublevel` or encoding on an operation object is
 * ignored).
 *
 * Encodings go with each operation only when the database's defaults are not utf8:
 * abstract-level copies a per-operation options object into a new object for every put,
 * which made a 10k-operation batch (a snapshot's reference index) cost ~120 ms instead of
 * ~20.
 */
async function writeChained(db: AnyAbstractLevel, operations: readonly MetaOperation[], sync: boolean): Promise<void> {
  const utf8Defaults = db.keyEncoding() === db.keyEncoding('utf8') && db.valueEncoding() === db.valueEncoding('utf8')
  const batch = db.batch()
  try {
    for (const op of operations) {
      if (op.type === 'put') {
        if (utf8Defaults) batch.put(op.key, op.value)
        else batch.put(op.key, op.value, UTF8)
      } else if (utf8Defaults) batch.del(op.key)
      else batch.del(op.key, UTF8)
    }
  } catch (err) {
    await batch.close().catch(() => undefined)
    throw err
  }
  // classic-level's write option; other databases ignore it.
  await (sync ? batch.write(SYNC) : batch.write())
}

const SYNC = Object.freeze({ sync: true })

/** Options of {@link AbstractLevelMetaStore}. */
export interface AbstractLevelMetaStoreOptions {
  /**
   * Write every batch with `sync: true`: it resolves once the database has `fsync`ed it
   * (LevelDB syncs its log), so a batch that resolved survives a power loss. `false` is
   * faster and loses only the latest batches on a power loss (whole batches: never part
   * of one); a process crash loses nothing either way. Databases that keep nothing on
   * disk ignore it.
   * @default true
   */
  sync?: boolean
}

/**
 * The shared implementation of the Level adapters: a {@link MetaStore} over any
 * abstract-level database. Batches are `db.batch` (atomic; synced unless `sync: false`); conditional batches check
 * their expectations and write under one in-process lock per store, so they hold only
 * while this instance is the database's only writer (`sharedConditionalBatch: false`).
 *
 * Subclasses supply the database through {@link AbstractLevelMetaStore.createDb} and may
 * refine error messages with {@link AbstractLevelMetaStore.mapOpenError}.
 */
export abstract class AbstractLevelMetaStore implements MetaStore {
  /** `sharedConditionalBatch: false`, `maxBatchOps: Infinity`. */
  readonly capabilities: MetaStoreCapabilities = CAPABILITIES
  readonly #mutex = new Mutex()
  /**
   * The value (or absence) each recently written key got from this store's last batch that
   * wrote it, oldest first. Only batches fill it, never reads, so it cannot hold a value
   * older than the database's. It holds because this instance is the database's only writer
   * while open (what `sharedConditionalBatch: false` already assumes); it is emptied on
   * every `open()`, as another process may write the database while it is closed.
   */
  readonly #recent = new Map<string, string | undefined>()
  /**
   * Keys that `get` read from the database lately, oldest first: a batch keeps the value
   * it writes (in `#recent`) only for these and for keys `#recent` already holds. Records
   * that are read back are read before they are written (a transaction reads what it
   * updates); records written blind (a segment, a progress marker) are not read back
   * soon, and keeping them only made garbage.
   */
  readonly #wanted = new Set<string>()
  #db: AnyAbstractLevel | undefined
  #status: StoreStatus = 'closed'
  #opening: Promise<void> | undefined
  #closing: Promise<void> | undefined
  readonly #sync: boolean

  /**
   * @param db The database, or `undefined` to create it on the first `open()` via {@link createDb}.
   * @param options `sync` (default `true`); a `TypeError` unless it is a boolean.
   */
  constructor(db?: AnyAbstractLevel, options: AbstractLevelMetaStoreOptions = {}) {
    if (options.sync !== undefined && typeof options.sync !== 'boolean') {
      throw new TypeError(`Expected \`sync\` to be a boolean, got \`${String(options.sync)}\``)
    }
    this.#db = db
    this.#sync = options.sync ?? true
  }

  /** Creates the database on first open (only called when none was given to the constructor). */
  protected abstract createDb(): AnyAbstractLevel

  /** A short description of the database for error messages, e.g. its location. */
  protected abstract get description(): string

  /** Maps a failure of `db.open()`; the default wraps it as `IO_ERROR`. */
  protected mapOpenError(err: unknown): SnapshotError {
    return toIoError(err, `opening ${this.description}`)
  }

  /** The underlying database, once created. */
  get db(): AnyAbstractLevel | undefined {
    return this.#db
  }

  /** `opening` → `open` → `closing` → `closed`, as in abstract-level. Starts `closed`. */
  get status(): StoreStatus {
    return this.#status
  }

  /** Opens the database. Idempotent; after `close()` it opens again. */
  async open(options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal)
    if (this.#closing) await this.#closing
    if (this.#status === 'open') return
    this.#opening ??= this.#doOpen().finally(() => {
      this.#opening = undefined
    })
    return this.#opening
  }

  async #doOpen(): Promise<void> {
    this.#status = 'opening'
    this.#recent.clear()
    this.#wanted.clear()
    try {
      this.#db ??= this.createDb()
      await this.#db.open()
      this.#status = 'open'
    } catch (err) {
      this.#status = 'closed'
      throw this.mapOpenError(err)
    }
  }

  /** Closes the database (waiting for an `open()` in progress). Idempotent. */
  async close(): Promise<void> {
    if (this.#opening) await this.#opening.catch(() => undefined)
    if (this.#closing) return this.#closing
    if (this.#status === 'closed') return
    this.#status = 'closing'
    this.#closing = (async () => {
      try {
        // Batches queued before close() still run (they may pass #ensureOpen while closing).
        await this.#mutex.run(async () => undefined)
        await this.#db?.close()
      } catch (err) {
        throw toIoError(err, `closing ${this.description}`)
      } finally {
        this.#status = 'closed'
        this.#closing = undefined
      }
    })()
    return this.#closing
  }

  #ensureOpen(orClosing = false): AnyAbstractLevel {
    const usable = this.#status === 'open' || (orClosing && this.#status === 'closing')
    if (!usable || this.#db === undefined) {
      throw new SnapshotError('NOT_OPEN', `${this.description} is not open${this.#status === 'closed' ? '; call open() first' : ` (${this.#status})`}`)
    }
    return this.#db
  }

  #mapError(err: unknown, what: string, signal?: AbortSignal): SnapshotError {
    const code = (err as { code?: unknown } | null)?.code
    if (code === 'LEVEL_DATABASE_NOT_OPEN' || code === 'LEVEL_ITERATOR_NOT_OPEN' || this.#status === 'closed') {
      if (!(err instanceof SnapshotError) && !signal?.aborted) {
        return new SnapshotError('NOT_OPEN', `${this.description} was closed during ${what}`, { cause: err })
      }
    }
    return toIoError(err, `${what} on ${this.description}`, signal)
  }

  /**
   * Reads one key; `undefined` when absent. A key this store read and then wrote lately
   * (job and task records, ID counters, collection versions) is answered from memory,
   * without a read that would queue behind file copies on libuv's thread pool.
   */
  async get(key: string, options: AbortOptions = {}): Promise<string | undefined> {
    throwIfAborted(options.signal)
    const db = this.#ensureOpen()
    if (this.#recent.has(key)) return this.#recent.get(key)
    this.#want(key)
    try {
      const value: unknown = await db.get(key, UTF8)
      return value === undefined || value === null ? undefined : String(value)
    } catch (err) {
      throw this.#mapError(err, 'get', options.signal)
    }
  }

  /**
   * Applies all operations atomically, in order. With `expect`, checks every expectation
   * and writes under the store's lock; on a mismatch rejects with the conflict error and
   * writes nothing.
   */
  async batch(operations: readonly MetaOperation[], options: MetaBatchOptions = {}): Promise<void> {
    const { signal, expect } = options
    throwIfAborted(signal)
    this.#ensureOpen()
    assertMetaOperations(operations)
    assertMetaExpectations(expect)
    await this.#mutex.run(async () => {
      throwIfAborted(signal)
      const db = this.#ensureOpen(true)
      try {
        if (expect !== undefined && expect.length > 0) {
          const values: unknown[] = await db.getMany(
            expect.map((e) => e.key),
            UTF8,
          )
          const conflicts = expect.filter((e, i) => (values[i] ?? undefined) !== e.value).map((e) => e.key)
          if (conflicts.length > 0) throw metaConflictError(conflicts)
          throwIfAborted(signal)
        }
        if (operations.length === 0) return
        await writeChained(db, operations, this.#sync)
        this.#remember(operations)
      } catch (err) {
        // The batch may or may not have landed: forget what it touched.
        this.#forget(operations)
        throw this.#mapError(err, `batch of ${operations.length} operations`, signal)
      }
    })
  }

  /**
   * Forgets what `operations` wrote. UTF-8 turns a lone surrogate into U+FFFD, so a key
   * with one may be another key in the database (one the cache holds): then it forgets all.
   */
  #forget(operations: readonly MetaOperation[]): void {
    if (operations.some((op) => SURROGATE.test(op.key))) return this.#recent.clear()
    for (const op of operations) this.#recent.delete(op.key)
  }

  /** Marks `key` as read: the next batch that writes it keeps its value (see `#wanted`). */
  #want(key: string): void {
    const wanted = this.#wanted
    wanted.delete(key)
    wanted.add(key)
    if (wanted.size <= WANTED_KEYS) return
    for (const k of wanted) {
      wanted.delete(k)
      if (wanted.size <= WANTED_KEYS) return
    }
  }

  /** Records what a batch that landed wrote to kept or wanted keys (see `#recent`, `#wanted`). */
  #remember(operations: readonly MetaOperation[]): void {
    // A bulk write (a snapshot's reference index) is forgotten rather than churned through.
    if (operations.length > RECENT_KEYS / 2 || operations.some((op) => SURROGATE.test(op.key))) return this.#forget(operations)
    const recent = this.#recent
    const wanted = this.#wanted
    for (const op of operations) {
      if (!recent.delete(op.key) && !wanted.delete(op.key)) continue
      if (op.type === 'del') recent.set(op.key, undefined)
      // A value with a lone surrogate reads back changed: not kept.
      else if (op.value.length <= RECENT_VALUE_CHARS && !SURROGATE.test(op.value)) recent.set(op.key, op.value)
    }
    if (recent.size <= RECENT_KEYS) return
    for (const key of recent.keys()) {
      recent.delete(key)
      if (recent.size <= RECENT_KEYS) return
    }
  }

  /**
   * Yields `[key, value]` pairs in key order within `range`, from an implicit snapshot
   * taken when iteration starts. Checks `signal` between entries.
   */
  async *iterate(range: MetaRange = {}, options: AbortOptions = {}): AsyncGenerator<[string, string]> {
    const { signal } = options
    throwIfAborted(signal)
    const db = this.#ensureOpen()
    const levelOptions: Record<string, unknown> = { ...UTF8, reverse: range.reverse === true }
    for (const bound of ['gt', 'gte', 'lt', 'lte'] as const) {
      if (range[bound] !== undefined) levelOptions[bound] = range[bound]
    }
    if (range.limit !== undefined && Number.isFinite(range.limit)) levelOptions.limit = Math.max(0, Math.floor(range.limit))
    let iterator: ReturnType<AnyAbstractLevel['iterator']> | undefined
    try {
      iterator = db.iterator(levelOptions)
      for (;;) {
        throwIfAborted(signal)
        const entries: [unknown, unknown][] = await iterator.nextv(PAGE_SIZE)
        if (entries.length === 0) return
        for (const [key, value] of entries) {
          throwIfAborted(signal)
          yield [String(key), String(value)]
        }
      }
    } catch (err) {
      throw this.#mapError(err, 'iterate', signal)
    } finally {
      await iterator?.close().catch(() => undefined)
    }
  }
}
