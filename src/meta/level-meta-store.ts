import { ClassicLevel } from 'classic-level'
import { SnapshotError, toIoError } from '../errors.js'
import { AbstractLevelMetaStore, type AnyAbstractLevel } from './abstract-level-meta-store.js'

/**
 * Options of {@link LevelMetaStore}: either a `location` (a LevelDB directory, opened
 * with classic-level) or an abstract-level `db` you created; and `sync`.
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

  /** Nothing is opened or locked before `open()`. Throws a `TypeError` on bad options. */
  constructor(options: LevelMetaStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`Expected \`options\` to be an object, got \`${String(options)}\``)
    }
    const { location, db, sync } = options
    if (db !== undefined) {
      if (location !== undefined) throw new TypeError('Expected only one of `location` and `db`, got both')
      if (typeof db !== 'object' || db === null || typeof (db as { iterator?: unknown }).iterator !== 'function') {
        throw new TypeError('Expected `db` to be an abstract-level database')
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
  }

  protected createDb(): AnyAbstractLevel {
    return new ClassicLevel<string, string>(this.location as string, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
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
