import { sharedAbortController } from '../util/abort.js'
import { throwIfAborted } from '../errors.js'
import type { SnapshotManagerEvents, TypedEmitter } from '../events.js'
import type { AbortOptions } from '../types.js'
import type { DemotionReason, LoopLeadership } from './leadership.js'

/** A background loop the runner starts when elected and stops when demoted. */
export interface RunnableLoop {
  start(): void
  /** Stops the loop and waits for its in-flight work. */
  stop(): Promise<void>
}

/** What recovery tells the runner of an unfinished snapshot, to decide whether to leave it alone. */
export interface UnfinishedSnapshot {
  id: number
  state: string
  /** Instance ID of the manager creating it. */
  owner?: string
}

/** What the loop runner drives. @internal */
export interface LoopRunnerDeps {
  leadership: LoopLeadership
  /** This manager's instance ID (its candidate ID, and the owner of its pending snapshots). */
  candidateId: string
  events: TypedEmitter<SnapshotManagerEvents>
  snapshots: { recover(options: AbortOptions & { keep?: (r: UnfinishedSnapshot) => boolean }): Promise<void> }
  restore: RunnableLoop & { recover(options: AbortOptions): Promise<void> }
  /** `acceptManualRuns()`: `runGc()` works on a manager that does not run the loops. */
  gc: RunnableLoop & { acceptManualRuns(): void }
  /** Runs the schedules: on the elected runner only, so two processes never both take a scheduled snapshot. */
  schedules: RunnableLoop
  /** Gap between two recovery sweeps while leading (only with a leadership that lists candidates). */
  sweepIntervalMs: number
}

/** Sweeps of the snapshot area run every this many restore checker ticks. */
export const SWEEP_TICKS = 15

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/**
 * Runs the manager's background work only while this manager is the elected loop runner
 * (see {@link LoopLeadership}): on election, recovery and then the restore, GC and schedule loops;
 * on demotion, the loops stop (their in-flight work is aborted and waited for).
 *
 * Why recovery runs in the runner only, and what it leaves alone: recovery deletes
 * things (the objects and records of `pending` snapshots, interrupted restore jobs'
 * partial copies through their rollback). A `pending` snapshot is also what a create in
 * flight looks like, possibly in another process; deleting it there would make that
 * create fail half-way. So:
 * - Only the runner recovers, so two recoveries never race each other or the loops.
 * - A `pending` record carries its creator's instance ID (`owner`), and recovery leaves
 *   it alone while the owner is a live candidate of the election (its session lease is
 *   alive). A record whose owner died, or that has no owner, is removed. No clock is
 *   involved, so a slow create is never mistaken for an abandoned one, and clock skew
 *   between machines does not matter. If an owner's lease lapses while it still runs,
 *   its create fails cleanly at commit ("removed while it was being created").
 * - `deleting` records are finished on election (finishing is idempotent, so racing a
 *   live `dropSnapshot` is harmless); the periodic sweep only finishes those it already
 *   saw in the previous sweep, so it does not race a drop in flight.
 * - With a leadership that lists live candidates (etcd), the runner repeats the sweep
 *   every `sweepIntervalMs`, because a non-runner can die mid-create at any time and its
 *   `pending` record would otherwise pin segments until the next election. A
 *   `LocalLeadership` lists no candidates: the store belongs to one process, so at
 *   `open()` every unfinished record is a previous run's, as before.
 * - Restore jobs need no owner: only the runner's checker and inspector ever work on
 *   them; other managers only accept jobs and mark them cancelled, durably, in one
 *   conditional batch each.
 * @internal
 */
export class LoopRunner {
  readonly #deps: LoopRunnerDeps
  #loopsRunning = false
  #sweepTimer: NodeJS.Timeout | undefined
  #sweeping: Promise<void> | undefined
  #sweepAbort: AbortController | undefined
  /** IDs of the `deleting` records the previous sweep saw. */
  #deletingSeen = new Set<number>()

  constructor(deps: LoopRunnerDeps) {
    this.#deps = deps
  }

  /** True while this manager runs the loops. */
  get leading(): boolean {
    return this.#loopsRunning
  }

  /**
   * Campaigns. Resolves once the candidacy is registered; when elected at once (always
   * with `LocalLeadership`), only after recovery finished and the loops started, and
   * rejects when that recovery fails.
   */
  async start(options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal)
    const { leadership, candidateId } = this.#deps
    await leadership.campaign(
      {
        elected: (signal) => this.#elected(signal),
        demoted: (reason) => this.#demoted(reason),
        error: (err) => this.#deps.events.emit('loopError', err, { loop: 'leadership' }),
      },
      { candidateId, signal: options.signal },
    )
    if (!this.#loopsRunning) this.#deps.gc.acceptManualRuns()
  }

  /** Resigns (stopping the loops first) and makes sure nothing keeps running. */
  async stop(): Promise<void> {
    try {
      await this.#deps.leadership.resign()
    } catch (err) {
      this.#deps.events.emit('loopError', asError(err), { loop: 'leadership' })
    } finally {
      await this.#stopLoops()
      // Also when this manager never led: ends manual GC passes, idempotent otherwise.
      await Promise.allSettled([this.#deps.gc.stop(), this.#deps.restore.stop(), this.#deps.schedules.stop()])
    }
  }

  async #elected(signal: AbortSignal): Promise<void> {
    const { restore, gc, schedules, leadership } = this.#deps
    await this.#recover({ signal }, false)
    throwIfAborted(signal)
    await restore.recover({ signal })
    throwIfAborted(signal)
    restore.start()
    gc.start()
    schedules.start()
    this.#loopsRunning = true
    if (leadership.candidates !== undefined) this.#startSweeps()
    this.#deps.events.emit('leadershipChanged', { leader: true })
  }

  async #demoted(reason: DemotionReason): Promise<void> {
    const was = this.#loopsRunning
    await this.#stopLoops()
    if (reason !== 'resigned') this.#deps.gc.acceptManualRuns()
    if (was) this.#deps.events.emit('leadershipChanged', { leader: false, reason })
  }

  async #stopLoops(): Promise<void> {
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer)
    this.#sweepTimer = undefined
    this.#sweepAbort?.abort(new Error('the loop runner stopped'))
    const sweeping = this.#sweeping
    if (!this.#loopsRunning) {
      await sweeping?.catch(() => undefined)
      return
    }
    this.#loopsRunning = false
    const { restore, gc, schedules } = this.#deps
    const results = await Promise.allSettled([schedules.stop(), gc.stop(), restore.stop(), sweeping])
    for (const r of results) if (r.status === 'rejected') this.#deps.events.emit('loopError', asError(r.reason), { loop: 'leadership' })
  }

  /**
   * Snapshot recovery: removes `pending` records whose owner is not alive and finishes
   * `deleting` ones (in a periodic sweep, only those seen by the previous sweep too).
   */
  async #recover(options: AbortOptions, periodic: boolean): Promise<void> {
    const { leadership, candidateId, snapshots } = this.#deps
    const alive = new Set(leadership.candidates === undefined ? [] : await leadership.candidates(options))
    alive.add(candidateId)
    const seen = new Set<number>()
    const previous = this.#deletingSeen
    await snapshots.recover({
      signal: options.signal,
      keep: (r: UnfinishedSnapshot) => {
        if (r.state === 'pending') return r.owner !== undefined && alive.has(r.owner)
        if (r.state === 'deleting' && periodic) {
          seen.add(r.id)
          return !previous.has(r.id)
        }
        return false
      },
    })
    this.#deletingSeen = seen
  }

  #startSweeps(): void {
    const controller = sharedAbortController()
    this.#sweepAbort = controller
    this.#sweepTimer = setInterval(() => {
      if (this.#sweeping !== undefined || controller.signal.aborted) return
      this.#sweeping = this.#recover({ signal: controller.signal }, true)
        .catch((err: unknown) => {
          if (!controller.signal.aborted) this.#deps.events.emit('loopError', asError(err), { loop: 'recovery' })
        })
        .finally(() => {
          this.#sweeping = undefined
        })
    }, this.#deps.sweepIntervalMs)
    this.#sweepTimer.unref()
  }
}
