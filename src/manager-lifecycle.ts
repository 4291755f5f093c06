import { SnapshotError, throwIfAborted } from './errors.js'
import type { LoopRunner } from './cluster/loop-runner.js'
import { checkLayoutVersion } from './meta/layout-version.js'
import type { MetaStore } from './meta/meta-store.js'
import type { ObjectStore } from './storage/object-store.js'
import type { AbortOptions } from './types.js'

/** Lifecycle of a {@link SnapshotManager}: `new` until `open()`, `open` once it resolved, `closed` after `close()` (it cannot be reopened). */
export type SnapshotManagerState = 'new' | 'opening' | 'open' | 'closing' | 'closed'

/**
 * The manager open on each MetaStore that has no election: a store whose batches are not
 * checked across processes (LevelDB, memory) given without a `leadership` option. Every
 * such manager runs recovery and the loops (`LocalLeadership` elects everyone), so a second
 * one on the same store object would purge the first one's creates in flight and work its
 * restore jobs twice. (With a `leadership`, one manager among them runs the loops, and
 * their transactions already serialize on the store object's lock.)
 */
const localOwners = new WeakMap<MetaStore, ManagerLifecycle>()

/** What a {@link ManagerLifecycle} opens and closes. */
export interface ManagerLifecycleOptions {
  /** The manager's guarded stores. */
  meta: MetaStore
  objects: ObjectStore
  /** Campaigns on open, resigns on close. */
  loops: Pick<LoopRunner, 'start' | 'stop'>
  /** True when a `leadership` option or the store elects one manager among several. */
  electedAmongOthers: boolean
}

/**
 * A manager's lifecycle: its state, `open()` and `close()` of the stores and the loops, one
 * manager at a time on a store without election, and the public calls under way that
 * `close()` waits for.
 * @internal
 */
export class ManagerLifecycle {
  readonly #o: ManagerLifecycleOptions
  #state: SnapshotManagerState = 'new'
  #opening: Promise<void> | undefined
  #closing: Promise<void> | undefined
  /** Public calls (and catalog transactions) under way. */
  readonly #inflight = new Set<Promise<unknown>>()

  constructor(options: ManagerLifecycleOptions) {
    this.#o = options
  }

  get state(): SnapshotManagerState {
    return this.#state
  }

  /** See `SnapshotManager.open`. */
  open(options: AbortOptions = {}): Promise<void> {
    const { meta, loops } = this.#o
    if (this.#state === 'open') return Promise.resolve()
    if (this.#opening) return this.#opening
    if (this.#state !== 'new') return Promise.reject(new SnapshotError('NOT_OPEN', 'the manager is closed; create a new one'))
    const local = !meta.capabilities.sharedConditionalBatch && !this.#o.electedAmongOthers
    const owner = local ? localOwners.get(meta) : undefined
    if (owner !== undefined && owner !== this) {
      return Promise.reject(
        new SnapshotError(
          'FAILED_PRECONDITION',
          'another SnapshotManager is open on this MetaStore: a LevelDB or memory store takes one manager at a time (close the other first, or share it)',
        ),
      )
    }
    if (local) localOwners.set(meta, this)
    this.#state = 'opening'
    this.#opening = (async () => {
      try {
        throwIfAborted(options.signal)
        await meta.open(options)
        await checkLayoutVersion(meta, options)
        await loops.start(options)
        this.#state = 'open'
      } catch (err) {
        this.#state = 'closed'
        await loops.stop().catch(() => undefined)
        await meta.close().catch(() => undefined)
        this.#releaseStore()
        throw err
      } finally {
        this.#opening = undefined
      }
    })()
    return this.#opening
  }

  /** See `SnapshotManager.close`. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing
    this.#closing = (async () => {
      if (this.#opening) await this.#opening.catch(() => undefined)
      if (this.#state === 'closed') return
      this.#state = 'closing'
      try {
        // Calls under way finish against open stores; new ones reject NOT_OPEN from here on.
        while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight])
        await this.#o.loops.stop()
      } finally {
        await this.#o.meta.close()
        await this.#o.objects.close?.()
        this.#releaseStore()
        this.#state = 'closed'
      }
    })()
    return this.#closing
  }

  /** Lets another manager open this manager's local MetaStore. */
  #releaseStore(): void {
    if (localOwners.get(this.#o.meta) === this) localOwners.delete(this.#o.meta)
  }

  #ensureOpen(): void {
    if (this.#state !== 'open') throw new SnapshotError('NOT_OPEN', this.#state === 'new' ? 'call open() first' : 'the manager is closed')
  }

  /** Keeps `work` (an API call under way) until it settles: `close()` waits for it before it closes the stores. */
  track(work: Promise<unknown>): void {
    this.#inflight.add(work)
    void work.then(
      () => this.#inflight.delete(work),
      () => this.#inflight.delete(work),
    )
  }

  /**
   * Runs a public call: `NOT_OPEN` unless open, `ABORTED` if the signal fired. With `track`,
   * `close()` waits for the call to settle before it closes the stores (a call racing
   * `close()` either finishes first or rejects `NOT_OPEN`, never inside a closed store).
   */
  async call<T>(signal: AbortSignal | undefined, fn: () => Promise<T>, track = true): Promise<T> {
    this.#ensureOpen()
    throwIfAborted(signal)
    const work = fn()
    if (track) this.track(work)
    return work
  }
}
