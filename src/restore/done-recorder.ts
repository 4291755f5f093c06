import type { ManagerContext } from '../context.js'
import { keys } from '../meta/keys.js'
import { JobStoppedError, chunkSize, readJob, writeJob, type JobRecord } from './job-state.js'
import type { FileCopy, PlannedSegment } from './target-plan.js'

/**
 * Least time between two commits of one recorder while nobody waits for them: records
 * gather in the meantime, so a task writes a few batches instead of one per segment
 * (each is a transaction, serialized with every other one of the process). A crash loses
 * at most this much of recorded work, which the resumed task copies again.
 */
export const COMMIT_INTERVAL_MS = 25

/** One batch of completion records and the callers waiting for it. */
interface Batch {
  files: FileCopy[]
  segments: PlannedSegment[]
  ops: number
  promise: Promise<void>
  resolve(): void
  reject(err: unknown): void
}

function newBatch(): Batch {
  let resolve!: () => void
  let reject!: (err: unknown) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => undefined)
  return { files: [], segments: [], ops: 0, promise, resolve, reject }
}

/**
 * Records a task's copies durably with group commit: per-file completion
 * (`keys.restoreFileDone`) for the files of segments still being copied and, once all
 * files of a segment are in, the segment marker (`keys.restoreSegmentDone`) together with
 * the job's progress counters, in the same batch. Records gather while a batch commits
 * and for up to `COMMIT_INTERVAL_MS` after the last commit started, so a task writes a
 * batch per segment only when copies are slower than that. Batches stay within the
 * MetaStore's operation limit.
 *
 * A segment is counted exactly once: its marker and its share of the counters commit
 * together, a task runs in one place at a time (the loop runner), and a resumed task
 * skips segments that already have a marker.
 * @internal
 */
export class DoneRecorder {
  readonly #ctx: Pick<ManagerContext, 'meta' | 'transactor'>
  readonly #jobId: number
  readonly #signal: AbortSignal
  readonly #onProgress: (job: JobRecord) => void
  readonly #limit: number
  readonly #intervalMs: number
  readonly #queue: Batch[] = []
  /** The drain under way, if `#drainRunning`. */
  #draining: Promise<void> = Promise.resolve()
  /** Cleared in the same turn the drain's loop finds the queue empty, so no `add` is left behind. */
  #drainRunning = false
  #failure: unknown
  /**
   * When the last commit started (`performance.now()`); at first, when the recorder was
   * made, so a task that copies its files within the interval commits them once, at its end.
   */
  #lastCommit = performance.now()
  /** Set by `flushed()`: commit what is queued without waiting for the interval. */
  #urgent = false
  /** Ends the wait between two commits early. */
  #wake: (() => void) | undefined

  /** @param intervalMs See {@link COMMIT_INTERVAL_MS}. */
  constructor(ctx: Pick<ManagerContext, 'meta' | 'transactor'>, jobId: number, signal: AbortSignal, onProgress: (job: JobRecord) => void, intervalMs = COMMIT_INTERVAL_MS) {
    this.#ctx = ctx
    this.#intervalMs = intervalMs
    this.#jobId = jobId
    this.#signal = signal
    this.#onProgress = onProgress
    // Room for the job record, its read and slack.
    this.#limit = Math.max(2, chunkSize(ctx.meta, 256) - 2)
  }

  /**
   * Records `files` as copied (and `segment` as complete, when given: then `files` are
   * its last files); resolves once durable. A segment's marker stands for all its files,
   * so files that commit together with it get no record of their own.
   */
  add(files: readonly FileCopy[], segment?: PlannedSegment): Promise<void> {
    const ops = segment === undefined ? files.length : 1
    let batch = this.#queue.at(-1)
    if (batch === undefined || (batch.ops > 0 && batch.ops + ops > this.#limit)) {
      this.#queue.push((batch = newBatch()))
      // A full batch waiting for the interval goes now.
      if (this.#queue.length > 1) this.#wake?.()
    }
    if (segment === undefined) batch.files.push(...files)
    else batch.segments.push(segment)
    batch.ops += ops
    if (!this.#drainRunning) {
      this.#drainRunning = true
      this.#draining = this.#drain()
    }
    return batch.promise
  }

  /** Resolves when everything added so far is durable (or rejects with the first failure). */
  async flushed(): Promise<void> {
    this.#urgent = true
    this.#wake?.()
    while (this.#drainRunning) await this.#draining
    if (this.#failure !== undefined) throw this.#failure
  }

  /** Commits queued batches in order; after a failure, rejects the rest. Never rejects itself. */
  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        if (this.#failure === undefined) await this.#gather()
        const batch = this.#queue.shift() as Batch
        if (this.#failure !== undefined) {
          batch.reject(this.#failure)
          continue
        }
        try {
          await this.#commit(batch)
          batch.resolve()
        } catch (err) {
          this.#failure = err
          batch.reject(err)
        }
      }
    } finally {
      this.#drainRunning = false
    }
  }

  /**
   * Waits until the commit interval passed since the last commit (records added meanwhile
   * join the first queued batch), unless the batch is full, someone waits in `flushed()`,
   * or the job stopped.
   */
  async #gather(): Promise<void> {
    const wait = this.#lastCommit + this.#intervalMs - performance.now()
    if (wait <= 0 || this.#urgent || this.#signal.aborted || this.#queue.length > 1) return
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#signal.removeEventListener('abort', done)
        this.#wake = undefined
        resolve()
      }
      const timer = setTimeout(done, wait)
      this.#signal.addEventListener('abort', done, { once: true })
      this.#wake = done
    })
  }

  async #commit(batch: Batch): Promise<void> {
    this.#lastCommit = performance.now()
    const jobId = this.#jobId
    const updated = await this.#ctx.transactor.run(async (tx) => {
      const job = await readJob(tx, jobId)
      if (job === undefined || job.state !== 'in_progress') throw new JobStoppedError(jobId, job?.state ?? 'removed')
      for (const f of batch.files) tx.put(keys.restoreFileDone(jobId, f.to), String(f.size))
      if (batch.segments.length === 0) return undefined
      let bytes = 0
      for (const s of batch.segments) {
        tx.put(keys.restoreSegmentDone(jobId, s.ordinal), '')
        bytes += s.bytes
      }
      const next: JobRecord = { ...job, copiedSegments: job.copiedSegments + batch.segments.length, copiedBytes: job.copiedBytes + bytes }
      writeJob(tx, next)
      return next
    }, { signal: this.#signal })
    if (updated !== undefined) this.#onProgress(updated)
  }
}
