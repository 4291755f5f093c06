import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import type { AbortOptions } from '../types.js'
import type { ListRestoreJobsOptions, RestoreJobInfo, RestoreSnapshotRequest, WaitForRestoreOptions } from './job-types.js'
import { isFinished, jobNotFound, mayWrite, readJobDirect, toJobInfo, type JobRecord } from './job-state.js'
import { ProgressReporter } from './progress.js'
import { RestoreChecker } from './restore-checker.js'
import { acceptRestore } from './restore-create.js'
import { RestoreInspector } from './restore-inspector.js'
import { jobTargetKeys } from './rollback.js'
import { SourceCache } from './snapshot-source.js'

export { isSnapshotInUse } from './snapshot-use.js'

/** Validates a job ID argument; IDs that cannot exist are simply not found. */
function checkJobId(jobId: unknown): asserts jobId is number {
  if (typeof jobId !== 'number') throw new TypeError(`Expected \`jobId\` to be a number, got \`${jobId === null ? 'null' : typeof jobId}\``)
  if (!Number.isSafeInteger(jobId) || jobId < 1) throw jobNotFound(jobId)
}

/**
 * Restore jobs (SPEC section 6): accepts restores, reports and waits on jobs, cancels
 * them, and runs the {@link RestoreChecker} (jobs → tasks) and the
 * {@link RestoreInspector} (tasks → copy workers on a p-queue) while the manager is open.
 * @internal
 */
export class RestoreService {
  readonly #ctx: ManagerContext
  readonly #sources: SourceCache
  readonly #reporter: ProgressReporter
  readonly #inspector: RestoreInspector
  readonly #checker: RestoreChecker

  constructor(ctx: ManagerContext) {
    this.#ctx = ctx
    this.#sources = new SourceCache(ctx.meta, ctx.objects)
    this.#reporter = new ProgressReporter(ctx)
    const onError = (err: unknown): void => {
      ctx.events.emit('loopError', err instanceof Error ? err : new Error(String(err)), { loop: 'restore' })
    }
    this.#inspector = new RestoreInspector({
      ctx,
      sources: this.#sources,
      onProgress: (job) => this.#reporter.changed(job),
      onTaskSettled: (jobId) => this.#checker.kick(jobId),
      onJobFailed: (job) => {
        this.#reporter.changed(job)
        this.#checker.kick(job.jobId)
      },
      onError,
    })
    this.#checker = new RestoreChecker({
      ctx,
      sources: this.#sources,
      inspector: this.#inspector,
      onChanged: (job) => this.#reporter.changed(job),
      onFinished: (job) => this.#reporter.finished(job),
      onError,
      onRollbackError: (jobId) => this.#reporter.poke(jobId),
    })
  }

  /**
   * Validates the request, creates the target collection in state `restoring` and the
   * job in one transaction, and returns the job ID. The copy runs in the background.
   */
  async restore(request: RestoreSnapshotRequest): Promise<number> {
    const { job, metadata } = await acceptRestore(this.#ctx, request)
    // Only the process running the loops copies; elsewhere the job waits for the runner.
    if (this.#checker.running) this.#sources.put(job.jobId, metadata)
    this.#ctx.events.emit('restoreStarted', toJobInfo(job, this.#ctx.now()))
    this.#checker.kick(job.jobId)
    return job.jobId
  }

  /** The job's current state; `NOT_FOUND` ("restore job not found") when unknown or expired. */
  async getState(jobId: number, options: AbortOptions = {}): Promise<RestoreJobInfo> {
    checkJobId(jobId)
    throwIfAborted(options.signal)
    const job = await readJobDirect(this.#ctx.meta, jobId, options)
    if (job === undefined) throw jobNotFound(jobId)
    return toJobInfo(job, this.#ctx.now())
  }

  /** Jobs by job ID (creation order), optionally only those restoring into `collectionName`. */
  async list(options: ListRestoreJobsOptions = {}): Promise<RestoreJobInfo[]> {
    const { signal, collectionName } = options
    throwIfAborted(signal)
    if (collectionName !== undefined && typeof collectionName !== 'string') {
      throw new TypeError(`Expected \`collectionName\` to be a string, got \`${typeof collectionName}\``)
    }
    const now = this.#ctx.now()
    const out: RestoreJobInfo[] = []
    for await (const [, value] of this.#ctx.meta.iterate(prefixRange(keys.restoreJobPrefix), { signal })) {
      const job = JSON.parse(value) as JobRecord
      if (collectionName === undefined || job.targetCollectionName === collectionName) out.push(toJobInfo(job, now))
    }
    return out
  }

  /**
   * Resolves when the job completes; rejects `RESTORE_FAILED` (with the reason) once a
   * failed or cancelled job is rolled back, `ABORTED` when the signal fires. `onProgress`
   * gets the job whenever its progress changes, and once at the end.
   */
  async wait(jobId: number, options: WaitForRestoreOptions = {}): Promise<RestoreJobInfo> {
    checkJobId(jobId)
    const { signal, onProgress } = options
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError(`Expected \`onProgress\` to be a function, got \`${typeof onProgress}\``)
    let lastProgress = -1
    const watch = this.#reporter.watch(jobId)
    try {
      let known: JobRecord | undefined
      for (;;) {
        throwIfAborted(signal)
        // Changes made in this process come with the committed record; otherwise re-read.
        const job = known ?? (await readJobDirect(this.#ctx.meta, jobId, { signal }))
        if (job === undefined) throw jobNotFound(jobId)
        const info = toJobInfo(job, this.#ctx.now())
        if (job.state === 'completed') {
          onProgress?.(info)
          return info
        }
        if ((job.state === 'failed' || job.state === 'cancelled') && (isFinished(job) || this.#checker.rollbackError(jobId) !== undefined)) {
          onProgress?.(info)
          const rollbackError = this.#checker.rollbackError(jobId)
          throw new SnapshotError('RESTORE_FAILED', `restore job ${jobId} ${job.state}: ${job.reason}`, {
            cause: rollbackError,
            details: { job: info, rolledBack: isFinished(job) },
          })
        }
        if (onProgress !== undefined && info.progress > lastProgress) {
          lastProgress = info.progress
          onProgress(info)
        }
        known = await watch.next(this.#ctx.options.checkIntervalMs, signal)
      }
    } finally {
      watch.close()
    }
  }

  /** Cancels an unfinished job and resolves once it is rolled back. No-op on a finished job; `NOT_FOUND` when unknown. */
  async cancel(jobId: number, options: AbortOptions = {}): Promise<void> {
    checkJobId(jobId)
    throwIfAborted(options.signal)
    const job = await readJobDirect(this.#ctx.meta, jobId, options)
    if (job === undefined) throw jobNotFound(jobId)
    const cancelled = await this.#checker.fail(jobId, 'cancelled', 'cancelled by the user')
    if (cancelled === undefined) return
    if (this.#checker.running) {
      try {
        await this.#checker.rollback(jobId)
        return
      } catch (err) {
        if (this.#checker.running) throw err
      }
    }
    // Not the loop runner (or no longer): the `cancelled` record is durable, and the
    // runner's checker rolls the job back on its next tick. Wait for that.
    await this.#rolledBack(jobId, options)
  }

  /** Polls the MetaStore until the job is finished or gone. */
  async #rolledBack(jobId: number, options: AbortOptions): Promise<void> {
    const { signal } = options
    for (;;) {
      throwIfAborted(signal)
      const next = this.#reporter.nextChange(jobId, this.#ctx.options.checkIntervalMs, signal)
      let job: JobRecord | undefined
      try {
        job = await readJobDirect(this.#ctx.meta, jobId, { signal })
      } catch (err) {
        next.cancel()
        throw err
      }
      if (job === undefined || isFinished(job)) {
        next.cancel()
        return
      }
      await next.promise
    }
  }

  /** Nothing to recover eagerly: `start()` resumes running jobs and unfinished rollbacks. */
  async recover(options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal)
  }

  /** Starts the checker and the inspector; jobs left running by an earlier process resume. */
  start(): void {
    this.#inspector.start()
    this.#checker.start()
  }

  /** Stops both loops and waits for in-flight copy tasks (they are aborted and resume after the next open). */
  async stop(): Promise<void> {
    const checker = this.#checker.stop()
    await this.#inspector.stop()
    await checker
    this.#reporter.clear()
    this.#sources.clear()
  }

  /**
   * Every target key that unfinished jobs (and rollbacks under way) may write, so GC
   * keeps them even with a zero orphan grace. The source files stay alive through the
   * snapshot's own references.
   */
  async *liveKeys(options: AbortOptions = {}): AsyncIterable<string> {
    throwIfAborted(options.signal)
    const ids: number[] = []
    for await (const [, value] of this.#ctx.meta.iterate(prefixRange(keys.restoreJobPrefix), options)) {
      const job = JSON.parse(value) as JobRecord
      if (mayWrite(job)) ids.push(job.jobId)
    }
    for (const id of ids) {
      const job = await readJobDirect(this.#ctx.meta, id, options)
      if (job === undefined || !mayWrite(job)) continue
      yield* jobTargetKeys(this.#ctx, this.#sources, job, options)
    }
  }
}
