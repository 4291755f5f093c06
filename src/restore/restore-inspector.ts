import { abortedController, sharedAbortController } from '../util/abort.js'
import PQueue from 'p-queue'
import type { ManagerContext } from '../context.js'
import { keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import { FILE_CONCURRENCY, runCopyTask, type CopySlots } from './copy-worker.js'
import { JobStoppedError, failJob, readJob, readTask, writeTask, type JobRecord, type TaskRecord } from './job-state.js'
import { Limiter } from './limiter.js'
import type { SourceCache } from './snapshot-source.js'

/** What the inspector needs from the service. @internal */
export interface RestoreInspectorDeps {
  ctx: ManagerContext
  /** Snapshots of the jobs (tasks read their manifests through it). */
  sources: SourceCache
  /** A segment was counted in a job's progress. */
  onProgress(job: JobRecord): void
  /** A task settled (done, failed or stopped); the checker may have work. */
  onTaskSettled(jobId: number): void
  /** A task failed its job; the record is the failed job. */
  onJobFailed(job: JobRecord): void
  /** A background failure that is not a task's (reported as `loopError`). */
  onError(err: unknown): void
}

/** In-memory state of one job's tasks in this process. */
interface JobEntry {
  /**
   * Aborts the job's tasks (fail-fast, cancel, timeout); also fires when the inspector
   * stops. Its signal is the one the job's tasks get (one listener on the root per job:
   * `AbortSignal.any` per task would leave a WeakRef per task on the root signal).
   */
  controller: AbortController
  /** Stops forwarding the root's abort to `controller`. */
  detach(): void
  /** Tasks queued or running. */
  tasks: Set<number>
  /** Promises of the tasks that started running (queued ones exit at once once the job is aborted). */
  running: Set<Promise<void>>
  /** A scan of the job's task records is under way. */
  scanning: boolean
  /** Unfinished tasks found by the scan; `next` is the first not queued yet. */
  todo: number[]
  next: number
}

/**
 * Turns the copy tasks of running jobs into work on a p-queue of `restoreConcurrency`
 * (SPEC section 6). The first failing task fails its job and aborts the job's other
 * tasks; `stop()` aborts every task, and the tasks resume after the next `open()`.
 * @internal
 */
export class RestoreInspector {
  readonly #deps: RestoreInspectorDeps
  readonly #queue: PQueue
  readonly #copySlots: CopySlots
  readonly #jobs = new Map<number, JobEntry>()
  /** Aborted while stopped (also before the first `start()`): nothing runs then. */
  #root = abortedController('the restore inspector is not running')

  constructor(deps: RestoreInspectorDeps) {
    this.#deps = deps
    this.#queue = new PQueue({ concurrency: deps.ctx.options.restoreConcurrency })
    this.#copySlots = new Limiter(deps.ctx.options.restoreConcurrency * FILE_CONCURRENCY)
  }

  /** Starts accepting work (after `stop()`, a fresh start). */
  start(): void {
    if (this.#root.signal.aborted) this.#root = sharedAbortController()
  }

  /** Aborts every task and waits until none runs. Aborted tasks resume after the next start. */
  async stop(): Promise<void> {
    this.#root.abort(new Error('the manager is closing'))
    this.#jobs.clear()
    // Queued tasks see the aborted signal and return at once, so the queue drains quickly.
    await this.#queue.onIdle()
  }

  /** True while this process queues or runs tasks of the job. */
  isActive(jobId: number): boolean {
    return (this.#jobs.get(jobId)?.tasks.size ?? 0) > 0
  }

  /**
   * Finds the unfinished tasks of a running job and feeds them to the queue, a few at a
   * time. Idempotent: the checker calls it on every tick, and a job already being worked
   * on is left alone.
   */
  async schedule(job: JobRecord): Promise<void> {
    const signal = this.#root.signal
    if (signal.aborted || job.state !== 'in_progress') return
    let entry = this.#jobs.get(job.jobId)
    if (entry !== undefined && (entry.scanning || entry.tasks.size > 0 || entry.next < entry.todo.length || entry.controller.signal.aborted)) return
    entry ??= this.#newEntry()
    this.#jobs.set(job.jobId, entry)
    entry.scanning = true
    const todo: number[] = []
    try {
      for await (const [, value] of this.#deps.ctx.meta.iterate(prefixRange(keys.restoreTaskPrefix(job.jobId)), { signal })) {
        const t = JSON.parse(value) as TaskRecord
        if (t.state !== 'completed' && t.state !== 'failed' && !entry.tasks.has(t.taskId)) todo.push(t.taskId)
      }
    } finally {
      entry.scanning = false
    }
    if (this.#jobs.get(job.jobId) !== entry || signal.aborted || entry.controller.signal.aborted) return
    entry.todo = todo
    entry.next = 0
    this.#pump()
  }

  /**
   * Keeps the queue at about twice `restoreConcurrency` tasks, taking the next task of
   * each job in turn, so memory does not grow with the number of tasks.
   */
  #pump(): void {
    if (this.#root.signal.aborted) return
    const limit = this.#deps.ctx.options.restoreConcurrency * 2
    for (let added = true; added && this.#queue.size + this.#queue.pending < limit; ) {
      added = false
      for (const [jobId, entry] of this.#jobs) {
        if (this.#queue.size + this.#queue.pending >= limit) return
        if (entry.next >= entry.todo.length || entry.controller.signal.aborted) continue
        this.#enqueue(jobId, entry, entry.todo[entry.next++])
        added = true
      }
    }
  }

  #enqueue(jobId: number, entry: JobEntry, taskId: number): void {
    entry.tasks.add(taskId)
    void this.#queue
      .add(async () => {
        const started = this.#run(jobId, entry, taskId)
        entry.running.add(started)
        try {
          await started
        } finally {
          entry.running.delete(started)
        }
      })
      .catch((err: unknown) => this.#deps.onError(err))
      .finally(() => {
        entry.tasks.delete(taskId)
        this.#pump()
        this.#deps.onTaskSettled(jobId)
      })
  }

  /** State of a job new to this process; its controller fires when the root does. */
  #newEntry(): JobEntry {
    const controller = sharedAbortController()
    const root = this.#root.signal
    const onStop = (): void => controller.abort(root.reason)
    root.addEventListener('abort', onStop, { once: true })
    const detach = (): void => root.removeEventListener('abort', onStop)
    return { controller, detach, tasks: new Set(), running: new Set(), scanning: false, todo: [], next: 0 }
  }

  async #run(jobId: number, entry: JobEntry, taskId: number): Promise<void> {
    const signal = entry.controller.signal
    if (signal.aborted) return
    try {
      await runCopyTask({ ...this.#deps, copySlots: this.#copySlots }, jobId, taskId, signal, this.#root.signal)
    } catch (err) {
      if (err instanceof JobStoppedError || signal.aborted) return
      entry.controller.abort(err)
      await this.#failTask(jobId, taskId, err)
    }
  }

  /** Fail-fast: the task and its job become `failed` in one transaction. */
  async #failTask(jobId: number, taskId: number, err: unknown): Promise<void> {
    const message = err instanceof Error ? err.message : String(err)
    const failed = await this.#deps.ctx.transactor.run(async (tx) => {
      const job = await readJob(tx, jobId)
      if (job === undefined) return undefined
      const task = await readTask(tx, jobId, taskId)
      if (task !== undefined && task.state !== 'completed') writeTask(tx, { ...task, state: 'failed', reason: message })
      return failJob(tx, job, 'failed', `copy task ${taskId} failed: ${message}`)
    })
    if (failed !== undefined) this.#deps.onJobFailed(failed)
  }

  /**
   * Aborts the job's tasks and waits until none of them runs (before a rollback deletes
   * what they wrote). The job is not scheduled again in this process.
   */
  async abortJob(jobId: number): Promise<void> {
    const entry = this.#jobs.get(jobId)
    if (entry === undefined) return
    entry.controller.abort(new Error(`restore job ${jobId} stopped`))
    await Promise.allSettled([...entry.running])
  }

  /** Forgets a finished job. */
  forget(jobId: number): void {
    this.#jobs.get(jobId)?.detach()
    this.#jobs.delete(jobId)
  }
}
