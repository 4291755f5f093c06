import { SnapshotError, throwIfAborted } from '../errors.js'
import { expectObject, expectOptions } from './catalog-validate.js'
import type { MetaStore } from './meta-store.js'
import { Transactor, type MetaTxn } from './transaction.js'

/** Options of the {@link Catalog} constructor, which the manager calls (use `manager.catalog` or {@link Catalog.over}). @internal */
export interface CatalogOptions {
  /** Runs every mutation as one atomic MetaStore batch. */
  transactor: Transactor
  /** Clock for `createdAt` and `droppedAt`, epoch milliseconds. @default Date.now */
  now?: () => number
  /** When given and false, every method rejects with `NOT_OPEN` (the manager's lifecycle). @internal */
  isOpen?: () => boolean
  /** Called with every transaction the catalog starts, so that the manager's `close()` can wait for it. @internal */
  track?: (work: Promise<unknown>) => void
}

/**
 * The gate every call of a Catalog passes: on entry the lifecycle (`NOT_OPEN` while the
 * manager is not open), the options object and the abort signal; then its transactions,
 * each handed to the manager's `track` so that `close()` waits for it.
 * @internal
 */
export class CatalogGate {
  /** Clock for `createdAt` and `droppedAt`. */
  readonly now: () => number
  readonly #transactor: Transactor
  readonly #isOpen: (() => boolean) | undefined
  readonly #track: ((work: Promise<unknown>) => void) | undefined

  /** Throws a `TypeError` on bad options. */
  constructor(options: CatalogOptions) {
    expectObject(options, 'options')
    if (!(options.transactor instanceof Transactor)) throw new TypeError('Expected `transactor` to be a Transactor')
    if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError(`Expected \`now\` to be a function, got \`${typeof options.now}\``)
    if (options.isOpen !== undefined && typeof options.isOpen !== 'function') throw new TypeError(`Expected \`isOpen\` to be a function, got \`${typeof options.isOpen}\``)
    this.#transactor = options.transactor
    this.now = options.now ?? Date.now
    this.#isOpen = options.isOpen
    this.#track = options.track
  }

  /** The store, for listings that stream outside any transaction. */
  get store(): MetaStore {
    return this.#transactor.store
  }

  /** Checks the lifecycle, the options and the signal; returns the signal. */
  enter(options: unknown, name = 'options'): AbortSignal | undefined {
    if (this.#isOpen !== undefined && !this.#isOpen()) throw new SnapshotError('NOT_OPEN', 'the catalog is not open: open the manager first')
    expectOptions(options, name)
    const signal = options?.signal as AbortSignal | undefined
    throwIfAborted(signal)
    return signal
  }

  run<T>(signal: AbortSignal | undefined, fn: (tx: MetaTxn) => Promise<T>): Promise<T> {
    const work = this.#transactor.run(fn, { signal })
    this.#track?.(work)
    return work
  }

  /** A read that writes nothing: it takes no lock, so it never waits behind a long write. */
  read<T>(signal: AbortSignal | undefined, fn: (tx: MetaTxn) => Promise<T>): Promise<T> {
    const work = this.#transactor.read(fn, { signal })
    this.#track?.(work)
    return work
  }
}
