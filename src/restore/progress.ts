import type { ManagerContext } from '../context.js'
import { abortError } from '../errors.js'
import { toJobInfo, type JobRecord } from './job-state.js'

/** A follower of one job's changes (see {@link ProgressReporter.watch}). @internal */
export interface JobWatch {
  /** The latest change since the previous call, waiting up to `timeoutMs`; undefined means "re-read". */
  next(timeoutMs: number, signal?: AbortSignal): Promise<JobRecord | undefined>
  /** Stops following. */
  close(): void
}

/** Per-job throttle state of `restoreProgress`. */
interface Throttle {
  lastMs: number
  timer?: NodeJS.Timeout
  latest?: JobRecord
}

/**
 * Tells the outside about job changes: the throttled `restoreProgress` event (payload
 * built only when someone listens), `restoreFinished`, and in-process waiters of
 * `waitForRestore`.
 * @internal
 */
export class ProgressReporter {
  readonly #ctx: ManagerContext
  readonly #throttles = new Map<number, Throttle>()
  readonly #waiters = new Map<number, Set<(job?: JobRecord) => void>>()

  constructor(ctx: ManagerContext) {
    this.#ctx = ctx
  }

  /** A job changed (progress, state); wakes waiters and emits a throttled `restoreProgress`. */
  changed(job: JobRecord): void {
    this.#wake(job.jobId, job)
    const { events, options } = this.#ctx
    if (!events.listens('restoreProgress')) return
    let t = this.#throttles.get(job.jobId)
    if (t === undefined) this.#throttles.set(job.jobId, (t = { lastMs: -Infinity }))
    const nowMs = performance.now()
    const wait = t.lastMs + options.progressThrottleMs - nowMs
    if (wait <= 0) {
      t.lastMs = nowMs
      this.#emitProgress(job)
      return
    }
    t.latest = job
    if (t.timer !== undefined) return
    const state = t
    state.timer = setTimeout(() => {
      state.timer = undefined
      state.lastMs = performance.now()
      const latest = state.latest
      state.latest = undefined
      if (latest !== undefined && this.#ctx.events.listens('restoreProgress')) this.#emitProgress(latest)
    }, wait)
    state.timer.unref()
  }

  #emitProgress(job: JobRecord): void {
    try {
      this.#ctx.events.emit('restoreProgress', toJobInfo(job, this.#ctx.now()))
    } catch (err) {
      this.#ctx.events.emit('loopError', err instanceof Error ? err : new Error(String(err)), { loop: 'restore' })
    }
  }

  /** A job finished (completed, or failed/cancelled and rolled back): `restoreFinished`, waiters woken. */
  finished(job: JobRecord): void {
    this.#dropThrottle(job.jobId)
    this.#wake(job.jobId, job)
    try {
      this.#ctx.events.emit('restoreFinished', toJobInfo(job, this.#ctx.now()))
    } catch (err) {
      this.#ctx.events.emit('loopError', err instanceof Error ? err : new Error(String(err)), { loop: 'restore' })
    }
  }

  /** Wakes the job's waiters without an event (e.g. a rollback attempt failed). */
  poke(jobId: number): void {
    this.#wake(jobId)
  }

  /**
   * Resolves on the job's next change (with the record just committed, when the change
   * came with one), with undefined after `timeoutMs`, or rejects `ABORTED` when the signal
   * fires. Register before reading the state, so no change is missed.
   */
  nextChange(jobId: number, timeoutMs: number, signal?: AbortSignal): { promise: Promise<JobRecord | undefined>; cancel(): void } {
    let set = this.#waiters.get(jobId)
    if (set === undefined) this.#waiters.set(jobId, (set = new Set()))
    const waiters = set
    let wake!: (job?: JobRecord) => void
    let timer: NodeJS.Timeout | undefined
    let onAbort: (() => void) | undefined
    const cleanup = (): void => {
      waiters.delete(wake)
      if (waiters.size === 0 && this.#waiters.get(jobId) === waiters) this.#waiters.delete(jobId)
      if (timer !== undefined) clearTimeout(timer)
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
    }
    const promise = new Promise<JobRecord | undefined>((resolve, reject) => {
      wake = (job) => {
        cleanup()
        resolve(job)
      }
      waiters.add(wake)
      timer = setTimeout(() => wake(), timeoutMs)
      timer.unref()
      if (signal !== undefined) {
        onAbort = () => {
          cleanup()
          reject(abortError(signal))
        }
        signal.addEventListener('abort', onAbort, { once: true })
      }
    })
    // The caller may be awaiting something else when the signal fires; it still awaits (or
    // cancels) this promise afterwards, so an early rejection must not count as unhandled.
    promise.catch(() => undefined)
    return { promise, cancel: cleanup }
  }

  /**
   * Follows one job's changes until `close()`: `next()` resolves with the record of the
   * latest change since the previous call (at once if there was one), or with undefined
   * after `timeoutMs` (or when a change came without a record), then the caller re-reads.
   * Nothing is missed between two calls.
   */
  watch(jobId: number): JobWatch {
    let set = this.#waiters.get(jobId)
    if (set === undefined) this.#waiters.set(jobId, (set = new Set()))
    const waiters = set
    let changed = false
    let latest: JobRecord | undefined
    let settle: ((job: JobRecord | undefined) => void) | undefined
    const take = (): JobRecord | undefined => {
      const job = latest
      changed = false
      latest = undefined
      return job
    }
    const listener = (job?: JobRecord): void => {
      changed = true
      latest = job
      settle?.(take())
    }
    waiters.add(listener)
    return {
      next: (timeoutMs, signal) => {
        if (changed) return Promise.resolve(take())
        return new Promise<JobRecord | undefined>((resolve, reject) => {
          const done = (): void => {
            settle = undefined
            clearTimeout(timer)
            signal?.removeEventListener('abort', onAbort)
          }
          const onAbort = (): void => {
            done()
            reject(abortError(signal))
          }
          const timer = setTimeout(() => {
            done()
            resolve(undefined)
          }, timeoutMs)
          timer.unref()
          settle = (job) => {
            done()
            resolve(job)
          }
          signal?.addEventListener('abort', onAbort, { once: true })
        })
      },
      close: () => {
        waiters.delete(listener)
        if (waiters.size === 0 && this.#waiters.get(jobId) === waiters) this.#waiters.delete(jobId)
      },
    }
  }

  #wake(jobId: number, job?: JobRecord): void {
    const set = this.#waiters.get(jobId)
    if (set === undefined) return
    for (const wake of [...set]) wake(job)
  }

  #dropThrottle(jobId: number): void {
    const t = this.#throttles.get(jobId)
    if (t?.timer !== undefined) clearTimeout(t.timer)
    this.#throttles.delete(jobId)
  }

  /** Clears timers (on stop). Waiters keep waiting; they time out and re-read. */
  clear(): void {
    for (const id of [...this.#throttles.keys()]) this.#dropThrottle(id)
  }
}
