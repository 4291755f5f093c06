import { removeSnapshotUse } from './snapshot-use.js'
import { abortedController, sharedAbortController } from '../util/abort.js'
import type { ManagerContext } from '../context.js'
import { SnapshotError } from '../errors.js'
import { keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import { readCollectionById, writeCollection } from '../meta/records.js'
import { chunkSize, failJob, isFinished, readJob, readJobDirect, taskRange, writeJob, writeTask, type JobRecord } from './job-state.js'
import type { RestoreInspector } from './restore-inspector.js'
import { removeJob, rollbackJob } from './rollback.js'
import type { SourceCache } from './snapshot-source.js'

/** What the checker needs from the service. @internal */
export interface RestoreCheckerDeps {
  ctx: ManagerContext
  /** Snapshots of the jobs (task creation reads the full metadata). */
  sources: SourceCache
  /** Runs the tasks of `in_progress` jobs. */
  inspector: RestoreInspector
  /** A job changed state (running, failed, cancelled). */
  onChanged(job: JobRecord): void
  /** A job finished: completed, or failed/cancelled and rolled back. */
  onFinished(job: JobRecord): void
  /** A background failure (reported as `loopError`). */
  onError(err: unknown): void
  /** A rollback attempt failed (it is retried on later ticks). */
  onRollbackError(jobId: number): void
}

/**
 * Drives restore jobs through their states on every tick (every `checkIntervalMs`, and
 * at once when kicked): `pending` → tasks written → `in_progress`; `in_progress` →
 * `completed` once every task registered its segments (row count checked), or `failed`
 * past `restoreTimeoutMs`; `failed`/`cancelled` → rolled back; finished jobs removed
 * after `restoreJobRetentionMs` (SPEC section 6, Milvus's copy-segment checker).
 * @internal
 */
export class RestoreChecker {
  readonly #deps: RestoreCheckerDeps
  /** Rollbacks and removals under way, by job. */
  readonly #busy = new Map<number, Promise<JobRecord | undefined>>()
  /** Jobs whose last rollback attempt in this process failed, with the error. */
  readonly #rollbackErrors = new Map<number, unknown>()
  /**
   * Aborted while the checker is not running: before `start()` and after `stop()`. Only
   * the manager that runs the loops (see `src/cluster/`) starts it, so on the others
   * `kick`, `fail`'s rollback and `rollback` do nothing and the job waits for the runner.
   */
  #root = abortedController('the restore checker is not running')
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | undefined
  #again = false
  /** The next tick looks at every job (else only at `#targets`). */
  #full = false
  /** Jobs the next tick looks at. */
  readonly #targets = new Set<number>()

  constructor(deps: RestoreCheckerDeps) {
    this.#deps = deps
  }

  /** True between `start()` and `stop()`: this process runs the restore loops. */
  get running(): boolean {
    return !this.#root.signal.aborted
  }

  /** Starts the unref'd tick timer and ticks at once. */
  start(): void {
    if (this.#root.signal.aborted) this.#root = sharedAbortController()
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => this.kick(), this.#deps.ctx.options.checkIntervalMs)
    this.#timer.unref()
    this.kick()
  }

  /** Stops ticking and waits for the tick, rollbacks and removals under way (they are aborted and resume later). */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    this.#root.abort(new Error('the manager is closing'))
    await this.#ticking?.catch(() => undefined)
    await Promise.allSettled([...this.#busy.values()])
  }

  /**
   * Runs a tick now (or right after the one under way): over every job, or with `jobId`
   * over that job only (a task of it settled; with many finished jobs retained, a tick
   * per task over all of them would cost more than the tasks).
   */
  kick(jobId?: number): void {
    if (this.#root.signal.aborted) return
    if (jobId === undefined) this.#full = true
    else this.#targets.add(jobId)
    if (this.#ticking !== undefined) {
      this.#again = true
      return
    }
    this.#ticking = (async () => {
      do {
        this.#again = false
        await this.#tick()
      } while (this.#again && !this.#root.signal.aborted)
    })()
      .catch((err: unknown) => this.#report(err))
      .finally(() => {
        this.#ticking = undefined
      })
  }

  /** The error of the last failed rollback attempt of a job in this process, if any. */
  rollbackError(jobId: number): unknown {
    return this.#rollbackErrors.get(jobId)
  }

  #report(err: unknown): void {
    if (this.#root.signal.aborted) return
    this.#deps.onError(err)
  }

  async #tick(): Promise<void> {
    const { ctx } = this.#deps
    const signal = this.#root.signal
    const full = this.#full
    const targets = [...this.#targets]
    this.#full = false
    this.#targets.clear()
    const jobs: JobRecord[] = []
    if (full) {
      for await (const [, value] of ctx.meta.iterate(prefixRange(keys.restoreJobPrefix), { signal })) jobs.push(JSON.parse(value) as JobRecord)
    } else {
      for (const jobId of targets) {
        const job = await readJobDirect(ctx.meta, jobId, { signal })
        if (job !== undefined) jobs.push(job)
      }
    }
    for (const job of jobs) {
      if (signal.aborted) return
      try {
        await this.#check(job)
      } catch (err) {
        this.#report(err)
      }
    }
  }

  async #check(job: JobRecord): Promise<void> {
    const { ctx, inspector } = this.#deps
    const now = ctx.now()
    if ((job.state === 'pending' || job.state === 'in_progress') && now - job.createdAt > ctx.options.restoreTimeoutMs) {
      await this.fail(job.jobId, 'failed', `timed out: still running after restoreTimeoutMs (${ctx.options.restoreTimeoutMs} ms)`)
      return
    }
    if (job.state === 'pending') {
      await this.#start(job)
    } else if (job.state === 'in_progress') {
      if (job.completedTasks >= job.taskCount) await this.#complete(job.jobId)
      else await inspector.schedule(job)
    } else if (job.rollback === 'pending') {
      void this.rollback(job.jobId).catch(() => undefined)
    } else if (isFinished(job) && now - (job.finishedAt ?? job.createdAt) >= ctx.options.restoreJobRetentionMs) {
      this.#remove(job.jobId)
    }
  }

  /** `pending` → tasks written (chunked, idempotent) → `in_progress` (or completed at once with no segments). */
  async #start(job: JobRecord): Promise<void> {
    const { ctx, sources } = this.#deps
    const signal = this.#root.signal
    if (job.taskCount > 0) {
      try {
        if (!(await this.#writeTasks(job))) return
      } finally {
        sources.release(job.jobId)
      }
    }
    const running = await ctx.transactor.run(async (tx) => {
      const current = await readJob(tx, job.jobId)
      if (current?.state !== 'pending') return undefined
      const next: JobRecord = { ...current, state: 'in_progress' }
      writeJob(tx, next)
      return next
    }, { signal })
    if (running === undefined) return
    this.#deps.onChanged(running)
    if (running.taskCount === 0) await this.#complete(running.jobId)
    else await this.#deps.inspector.schedule(running)
  }

  /**
   * Writes the tasks of a `pending` job, a chunk of them per transaction, reading the
   * snapshot's segment list a chunk at a time. Resolves false when the job stopped being
   * `pending` (or its snapshot does not match it, which fails the job).
   */
  async #writeTasks(job: JobRecord): Promise<boolean> {
    const { ctx, sources } = this.#deps
    const signal = this.#root.signal
    const size = chunkSize(ctx.meta)
    const metadata = await sources.metadata(job, { signal })
    if (metadata.segmentCount !== job.totalSegments) {
      await this.fail(job.jobId, 'failed', `snapshot ${job.snapshotName} lists ${metadata.segmentCount} segments, the job expected ${job.totalSegments}`)
      return false
    }
    const segments = metadata.segments()
    for (let from = 0; from < job.taskCount; from += size) {
      const to = Math.min(from + size, job.taskCount)
      const base = taskRange(job, from).first
      const last = taskRange(job, to - 1)
      // Read before the transaction: its function may run more than once.
      const batch = segments.next(last.first + last.count - base)
      const still = await ctx.transactor.run(async (tx) => {
        const current = await readJob(tx, job.jobId)
        if (current?.state !== 'pending') return false
        for (let taskId = from; taskId < to; taskId++) {
          const { first, count } = taskRange(job, taskId)
          // Nothing runs before the job is in_progress, so rewriting a task written by an interrupted run is harmless.
          writeTask(tx, {
            jobId: job.jobId,
            taskId,
            first,
            count,
            segmentIds: batch.segmentIds.slice(first - base, first - base + count),
            owners: batch.owners.slice(first - base, first - base + count),
            state: 'pending',
            reason: '',
            attempts: 0,
          })
        }
        return true
      }, { signal })
      if (!still) return false
    }
    return true
  }

  /** `in_progress` → `completed` (collection visible, guards released) or `failed` on a row-count mismatch. */
  async #complete(jobId: number): Promise<void> {
    const { ctx } = this.#deps
    const result = await ctx.transactor.run(async (tx) => {
      const job = await readJob(tx, jobId)
      if (job?.state !== 'in_progress' || job.completedTasks < job.taskCount) return undefined
      if (job.restoredRows !== job.expectedRows) {
        return failJob(tx, job, 'failed', `row count mismatch: restored ${job.restoredRows} rows, the snapshot has ${job.expectedRows}`)
      }
      const collection = await readCollectionById(tx, job.collectionId)
      if (collection === undefined) return failJob(tx, job, 'failed', `the target collection ${job.targetCollectionName} disappeared`)
      writeCollection(tx, { ...collection, state: 'created' })
      const targetKey = keys.restoreTarget(job.targetCollectionName)
      if ((await tx.get(targetKey)) === String(jobId)) tx.del(targetKey)
      await removeSnapshotUse(tx, job.snapshotId, jobId)
      const done: JobRecord = { ...job, state: 'completed', reason: '', finishedAt: ctx.now() }
      writeJob(tx, done)
      return done
    }, { signal: this.#root.signal })
    if (result === undefined) return
    if (result.state === 'completed') {
      this.#deps.inspector.forget(jobId)
      this.#deps.sources.forget(jobId)
      this.#deps.onFinished(result)
    } else {
      this.#deps.onChanged(result)
      void this.rollback(jobId).catch(() => undefined)
    }
  }

  /**
   * Fails (or cancels) an unfinished job and rolls it back. Resolves the failed record,
   * or undefined when the job was already terminal or is unknown.
   */
  async fail(jobId: number, state: 'failed' | 'cancelled', reason: string): Promise<JobRecord | undefined> {
    const failed = await this.#deps.ctx.transactor.run(async (tx) => {
      const job = await readJob(tx, jobId)
      return job === undefined ? undefined : failJob(tx, job, state, reason)
    })
    if (failed === undefined) return undefined
    this.#deps.onChanged(failed)
    void this.rollback(jobId).catch(() => undefined)
    return failed
  }

  /**
   * Rolls a failed or cancelled job back (single-flight per job): aborts its tasks, waits
   * for them, then removes everything it made. Resolves the finished record, or undefined
   * when there was nothing left to roll back.
   */
  rollback(jobId: number): Promise<JobRecord | undefined> {
    const busy = this.#busy.get(jobId)
    if (busy !== undefined) return busy
    const signal = this.#root.signal
    if (signal.aborted) return Promise.reject(new SnapshotError('NOT_OPEN', 'the restore loops are not running in this manager'))
    const run = (async () => {
      await this.#deps.inspector.abortJob(jobId)
      const done = await rollbackJob(this.#deps.ctx, this.#deps.sources, jobId, { signal })
      if (done !== undefined) {
        this.#rollbackErrors.delete(jobId)
        this.#deps.inspector.forget(jobId)
        this.#deps.onFinished(done)
      }
      return done
    })()
    const tracked = run
      .catch((err: unknown) => {
        if (!signal.aborted) {
          this.#rollbackErrors.set(jobId, err)
          this.#report(err)
          this.#deps.onRollbackError(jobId)
        }
        throw err
      })
      .finally(() => this.#busy.delete(jobId))
    this.#busy.set(jobId, tracked)
    return tracked
  }

  #remove(jobId: number): void {
    if (this.#busy.has(jobId)) return
    const run = removeJob(this.#deps.ctx, jobId, { signal: this.#root.signal })
      .then(() => undefined)
      .catch((err: unknown) => {
        this.#report(err)
        return undefined
      })
      .finally(() => this.#busy.delete(jobId))
    this.#busy.set(jobId, run)
  }
}
