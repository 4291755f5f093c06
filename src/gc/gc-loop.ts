import { sharedAbortController } from '../util/abort.js'
import PQueue from 'p-queue'
import type { ManagerContext } from '../context.js'
import { SnapshotError, abortError, throwIfAborted } from '../errors.js'
import { runGcPass, type GcSources } from './gc-pass.js'
import type { GcReport, RunGcOptions } from './gc-types.js'

export type { GcSources } from './gc-pass.js'
export type { RestoreKeysSource, SnapshotMarkSource } from './mark.js'

/**
 * Snapshot-aware garbage collection (SPEC section 7): `run()` performs one pass now; while
 * the loop is started, a pass also runs every `gcIntervalMs` (0 turns the loop off).
 * Passes, manual or from the loop, run one at a time on a p-queue of concurrency 1; the
 * timer is `unref()`'d, and loop failures become `loopError` events (`{ loop: 'gc' }`),
 * never rejections. Every finished pass emits `gcCompleted` with its report.
 *
 * The manager's loop runner calls `start()` only after recovery (pending snapshots
 * removed, deleting ones finished), so the snapshot records GC reads are settled. A
 * manager that does not run the loops calls `acceptManualRuns()`: `run()` works there,
 * without a timer. Otherwise, and after `stop()`, `run()` rejects with `NOT_OPEN`.
 * @internal
 */
export class GcService {
  readonly #ctx: ManagerContext
  readonly #sources: GcSources
  readonly #queue = new PQueue({ concurrency: 1 })
  #accepting = false
  #looping = false
  #timer: NodeJS.Timeout | undefined
  #loopAbort: AbortController | undefined

  /** `sources` tell what snapshots (in any state) and unfinished restore jobs reference. */
  constructor(ctx: ManagerContext, sources: GcSources) {
    this.#ctx = ctx
    this.#sources = sources
  }

  /** True while the background loop runs (between `start()` and `stop()`). */
  get looping(): boolean {
    return this.#looping
  }

  /** Accepts manual passes and, when `gcIntervalMs > 0`, runs the loop. Idempotent. */
  start(): void {
    this.#accepting = true
    if (this.#looping) return
    this.#looping = true
    this.#loopAbort = sharedAbortController()
    // What interrupted writes left (a store's temporary files): once per start, in the
    // background and on the loop's queue (its listing never writes, so it never did this).
    const signal = this.#loopAbort.signal
    void this.#queue
      .add(async () => (await this.#ctx.objects.removeStaleTempFiles?.({ signal })) ?? 0, { signal })
      .catch((err: unknown) => {
        if (!signal.aborted) this.#ctx.events.emit('loopError', err instanceof Error ? err : new Error(String(err)), { loop: 'gc' })
      })
    this.#schedule()
  }

  /** Accepts manual passes (`run()`) without running the loop: a manager that does not lead the loops. Idempotent. */
  acceptManualRuns(): void {
    this.#accepting = true
  }

  /**
   * Stops the loop (clearing its timer and aborting its pass under way), stops accepting
   * manual passes, and waits until no pass runs. A manual pass under way finishes.
   * Idempotent.
   */
  async stop(): Promise<void> {
    this.#accepting = false
    this.#looping = false
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#loopAbort?.abort(new Error('GC stopped'))
    this.#loopAbort = undefined
    await this.#queue.onIdle()
  }

  /**
   * Runs one pass (after any pass under way) and resolves its report. `dryRun` deletes
   * nothing and reports what would be deleted. Rejects `CORRUPT` (with
   * `details.missing`) when an object a committed snapshot references is missing,
   * deleting nothing; `NOT_OPEN` when passes are not accepted; `ABORTED` when the signal
   * fires.
   */
  async run(options: RunGcOptions = {}): Promise<GcReport> {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected \`options\` to be an object, got \`${options === null ? 'null' : typeof options}\``)
    if (options.dryRun !== undefined && typeof options.dryRun !== 'boolean') throw new TypeError(`Expected \`dryRun\` to be a boolean, got \`${typeof options.dryRun}\``)
    const { signal } = options
    throwIfAborted(signal)
    if (!this.#accepting) throw notRunning()
    try {
      return await this.#queue.add(() => this.#pass(options), { signal })
    } catch (err) {
      if (signal?.aborted && !SnapshotError.is(err)) throw abortError(signal)
      throw err
    }
  }

  async #pass(options: RunGcOptions): Promise<GcReport> {
    if (!this.#accepting) throw notRunning()
    const report = await runGcPass(this.#ctx, this.#sources, options)
    this.#ctx.events.emit('gcCompleted', report)
    return report
  }

  #schedule(): void {
    const interval = this.#ctx.options.gcIntervalMs
    const controller = this.#loopAbort
    if (!this.#looping || interval <= 0 || controller === undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      const { signal } = controller
      this.#queue
        .add(() => this.#pass({ signal }), { signal })
        .catch((err: unknown) => {
          if (signal.aborted || !this.#looping) return
          this.#ctx.events.emit('loopError', err instanceof Error ? err : new Error(String(err)), { loop: 'gc' })
        })
        .finally(() => {
          if (this.#loopAbort === controller) this.#schedule()
        })
    }, interval)
    this.#timer.unref()
  }
}

function notRunning(): SnapshotError {
  return new SnapshotError('NOT_OPEN', 'GC does not run on this manager now: open it first')
}
