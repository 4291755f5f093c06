import { ClassicLevel } from 'classic-level'
import { SnapshotError, toIoError } from '../errors.js'
import { AbstractLevelMetaStore, type AnyAbstractLevel } from './abstract-level-meta-store.js'

/** Default of {@link LevelMetaStoreOptions.blockCacheBytes}: LevelDB's own. */
export const DEFAULT_BLOCK_CACHE_BYTES = 8 * 1024 * 1024

/**
 * Default of {@link LevelMetaStoreOptions.writeBufferBytes}: a quarter of LevelDB's own
 * (4 MiB). Writing the records of 100k restored segments (~50 MB) held ~9 MB more of the
 * process's memory with 4 MiB buffers (the one filling and the one being written out,
 * spread over the threads that wrote them) than with 1 MiB; in a restore of 100k segments
 * the smaller buffers cost about a second more of LevelDB's background compaction (it
 * read 154 MB instead of 51).
 */
export const DEFAULT_WRITE_BUFFER_BYTES = 1024 * 1024

/** LevelDB's bounds of a write buffer (it clips the size to them). */
const WRITE_BUFFER_MIN_BYTES = 64 * 1024
const WRITE_BUFFER_MAX_BYTES = 1024 * 1024 * 1024

/**
 * Options of {@link LevelMetaStore}: either a `location` (a LevelDB directory, opened
 * with classic-level) or an abstract-level `db` you created; `sync`; and, with a
 * `location`, how much memory LevelDB may use.
 */
export type LevelMetaStoreOptions = LevelMetaStoreDatabase & {
  /**
   * Write every batch with LevelDB's `sync: true` (its log is `fsync`ed before the batch
   * resolves), so a committed snapshot, catalog change or restore job survives a power
   * loss. `false` is faster (see the durability bench), for tests and benchmarks: a power
   * loss (not a process crash) may then lose the latest batches, never part of one.
   * @default true
   */
  sync?: boolean
  /**
   * Bytes of LevelDB's cache of uncompressed table blocks (classic-level's `cacheSize`),
   * which point reads of records not written lately fill. Only with `location` (a `db`
   * you create is configured by you).
   * @default 8 * 1024 * 1024 (8 MiB, LevelDB's own)
   */
  blockCacheBytes?: number
  /**
   * Bytes LevelDB buffers in memory (its memtable, classic-level's `writeBufferSize`)
   * before it writes them out as a sorted table; while one is written out the next one
   * fills, so up to about twice this is in memory. Larger buffers mean fewer, larger
   * table files and compactions. Between 64 KiB and 1 GiB; only with `location`.
   * @default 1024 * 1024 (1 MiB; LevelDB's own is 4 MiB)
   */
  writeBufferBytes?: number
}

/** Where a {@link LevelMetaStore} keeps its data: a `location` or a `db`. */
export type LevelMetaStoreDatabase =
  | {
      /** Directory of the LevelDB database; created on first open. */
      location: string
      db?: undefined
    }
  | {
      /**
       * Any abstract-level database (classic-level, memory-level, a sublevel, …).
       * `open()`/`close()` open and close it. vecsnap reads and writes it with utf8
       * keys and values whatever its default encodings.
       */
      db: AnyAbstractLevel
      location?: undefined
    }

/**
 * The MetaStore on LevelDB (classic-level), for single-node deployments.
 *
 * LevelDB allows one process at a time: opening a location that another process (or
 * another open store in this one) holds rejects with `IO_ERROR`. Conditional batches
 * are checked in this process only (`capabilities.sharedConditionalBatch` is false).
 * Batches are durable by default: each resolves once LevelDB has synced it (`sync`).
 *
 * @example
 * const meta = new LevelMetaStore({ location: './data/meta' })
 * const manager = new SnapshotManager({ meta, objects })
 */
export class LevelMetaStore extends AbstractLevelMetaStore {
  /** The LevelDB directory, when constructed with `location`. */
  readonly location: string | undefined
  readonly #blockCacheBytes: number
  readonly #writeBufferBytes: number

  /** Nothing is opened or locked before `open()`. Throws a `TypeError` on bad options. */
  constructor(options: LevelMetaStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`Expected \`options\` to be an object, got \`${String(options)}\``)
    }
    const { location, db, sync, blockCacheBytes, writeBufferBytes } = options
    if (db !== undefined) {
      if (location !== undefined) throw new TypeError('Expected only one of `location` and `db`, got both')
      if (typeof db !== 'object' || db === null || typeof (db as { iterator?: unknown }).iterator !== 'function') {
        throw new TypeError('Expected `db` to be an abstract-level database')
      }
      if (blockCacheBytes !== undefined || writeBufferBytes !== undefined) {
        throw new TypeError('Expected `blockCacheBytes` and `writeBufferBytes` only with `location`: configure the `db` you create')
      }
      super(db, { sync })
    } else {
      if (typeof location !== 'string' || location.length === 0) {
        throw new TypeError(`Expected \`location\` to be a non-empty string, got \`${String(location)}\``)
      }
      // The database is created on first open(): classic-level opens (and locks) itself
      // as soon as it is constructed.
      super(undefined, { sync })
    }
    this.location = location
    this.#blockCacheBytes = byteOption('blockCacheBytes', blockCacheBytes, DEFAULT_BLOCK_CACHE_BYTES, 0, 2 ** 32 - 1)
    this.#writeBufferBytes = byteOption('writeBufferBytes', writeBufferBytes, DEFAULT_WRITE_BUFFER_BYTES, WRITE_BUFFER_MIN_BYTES, WRITE_BUFFER_MAX_BYTES)
  }

  protected createDb(): AnyAbstractLevel {
    return new ClassicLevel<string, string>(this.location as string, {
      keyEncoding: 'utf8',
      valueEncoding: 'utf8',
      cacheSize: this.#blockCacheBytes,
      writeBufferSize: this.#writeBufferBytes,
    })
  }

  protected get description(): string {
    return this.location === undefined ? 'the LevelDB meta store' : `the LevelDB meta store at ${this.location}`
  }

  protected override mapOpenError(err: unknown): SnapshotError {
    const cause = (err as { cause?: { code?: unknown } } | null)?.cause
    if ((err as { code?: unknown } | null)?.code === 'LEVEL_LOCKED' || cause?.code === 'LEVEL_LOCKED') {
      return new SnapshotError(
        'IO_ERROR',
        `${this.description} is locked by another process (or another open store in this one); LevelDB allows one at a time`,
        { cause: err },
      )
    }
    return toIoError(err, `opening ${this.description}`)
  }
}

/** `value`, or `fallback` when undefined; a `TypeError` unless it is an integer in `[min, max]`. */
function byteOption(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new TypeError(`Expected \`${name}\` to be an integer from ${min} to ${max}, got \`${String(value)}\``)
  }
  return value
}
