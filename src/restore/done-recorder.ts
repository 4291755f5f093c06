import type { ManagerContext } from '../context.js'
import { keys } from '../meta/keys.js'
import { JobStoppedError, chunkSize, readJob, writeJob, type JobRecord } from './job-state.js'
import type { FileCopy, PlannedSegment } from './target-plan.js'

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
 * the job's progress counters, in the same batch. While a batch commits, new records gather into the next one, so a task writes
 * one batch per segment when copies are slow and fewer when they are fast. Batches stay
 * within the MetaStore's operation limit.
 *
 * A segment is counted exactly once: its marker and its share of the counters commit
 * together, a task runs in one place at a time (the loop runner), and a resumed task
 * skips segments that already have a marker.
 * @internal
 */
export class DoneRecorder {
  readonly #ctx: ManagerContext
  readonly #jobId: number
  readonly #signal: AbortSignal
  readonly #onProgress: (job: JobRecord) => void
  readonly #limit: number
  readonly #queue: Batch[] = []
  #draining: Promise<void> | undefined
  #failure: unknown

  constructor(ctx: ManagerContext, jobId: number, signal: AbortSignal, onProgress: (job: JobRecord) => void) {
    this.#ctx = ctx
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
    if (batch === undefined || (batch.ops > 0 && batch.ops + ops > this.#limit)) this.#queue.push((batch = newBatch()))
    if (segment === undefined) batch.files.push(...files)
    else batch.segments.push(segment)
    batch.ops += ops
    this.#draining ??= this.#drain().finally(() => {
      this.#draining = undefined
    })
    return batch.promise
  }

  /** Resolves when everything added so far is durable (or rejects with the first failure). */
  async flushed(): Promise<void> {
    while (this.#draining !== undefined) await this.#draining
    if (this.#failure !== undefined) throw this.#failure
  }

  /** Commits queued batches in order; after a failure, rejects the rest. Never rejects itself. */
  async #drain(): Promise<void> {
    for (let batch = this.#queue.shift(); batch !== undefined; batch = this.#queue.shift()) {
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
  }

  async #commit(batch: Batch): Promise<void> {
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
