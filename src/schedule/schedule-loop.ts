import { SnapshotError } from '../errors.js'
import type { SnapshotManagerEvents, TypedEmitter } from '../events.js'
import type { PruneReport } from '../policy/retention.js'
import type { PruneSnapshotsOptions } from '../snapshot/snapshot-prune.js'
import type { CreateSnapshotRequest, SnapshotInfo } from '../snapshot/snapshot-types.js'
import type { AbortOptions } from '../types.js'
import { sharedAbortController } from '../util/abort.js'
import { abandonedSlot, CLAIM_RENEW_MS, dueSlot, scheduledSnapshotName, type ScheduleRecord, type ScheduleStore } from './schedule-store.js'
import type { ScheduleError, ScheduleRunResult } from './schedule-types.js'

/** What the schedule loop drives. @internal */
export interface ScheduleLoopDeps {
  schedules: ScheduleStore
  events: TypedEmitter<SnapshotManagerEvents>
  now(): number
  /** Creates a snapshot marked as the schedule's. */
  create(request: CreateSnapshotRequest, schedule: string): Promise<SnapshotInfo>
  /** The committed snapshot of that name, if any. */
  find(name: string): Promise<SnapshotInfo | undefined>
  /** Prunes the snapshots `only` accepts. */
  prune(options: PruneSnapshotsOptions, only: (s: SnapshotInfo) => boolean): Promise<PruneReport>
  /** Gap between two looks at the schedules; 0: the loop does not run (`runDue` still works). */
  intervalMs: number
  /** Gap between two renewals of the claim of a run under way. @default CLAIM_RENEW_MS */
  renewClaimMs?: number
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

function describe(err: unknown, at: number): ScheduleError {
  return { code: SnapshotError.is(err) ? err.code : 'IO_ERROR', message: asError(err).message, at }
}

/**
 * Runs schedules on the elected loop runner (the loop runner starts and stops it with the
 * restore and GC loops). Every `intervalMs` it reads the schedules (one range read) and
 * runs each one that is due: it claims the slot (`ScheduleStore.claim`), creates
 * `{prefix}-{slot time}`, applies the schedule's retention to the snapshots the schedule
 * created, and records the outcome. A failed run is recorded (`lastError`, a
 * `scheduleError` event) and the next slot runs as usual (a failed run is not repeated);
 * a run whose process died after its claim is run again once the claim is stale
 * (`CLAIM_STALE_MS`), unless a later slot is due by then; a run under way renews its claim
 * (`CLAIM_RENEW_MS`) so that it does not go stale. Runs go one at a time, in name order.
 * @internal
 */
export class ScheduleLoop {
  readonly #deps: ScheduleLoopDeps
  #timer: NodeJS.Timeout | undefined
  #abort: AbortController | undefined
  #ticking: Promise<void> | undefined

  constructor(deps: ScheduleLoopDeps) {
    this.#deps = deps
  }

  /** Starts looking at the schedules every `intervalMs` (the first look at once). Idempotent; nothing with `intervalMs` 0. */
  start(): void {
    if (this.#abort !== undefined || this.#deps.intervalMs <= 0) return
    const controller = sharedAbortController()
    this.#abort = controller
    const tick = (): void => {
      if (this.#ticking !== undefined || controller.signal.aborted) return
      this.#ticking = this.runDue({ signal: controller.signal })
        .then(() => undefined)
        .catch((err: unknown) => {
          if (!controller.signal.aborted) this.#deps.events.emit('loopError', asError(err), { loop: 'schedule' })
        })
        .finally(() => {
          this.#ticking = undefined
        })
    }
    this.#timer = setInterval(tick, this.#deps.intervalMs)
    this.#timer.unref()
    tick()
  }

  /** Stops the loop, aborting the run under way, and waits for it. Idempotent. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    this.#abort?.abort(new Error('the schedule loop stopped'))
    this.#abort = undefined
    await this.#ticking
  }

  /**
   * Runs every schedule due now, one at a time, and resolves what each run did (a slot
   * another process claimed first is not run here). A failed run is reported in its
   * entry (`error`) and as a `scheduleError` event, never thrown; one schedule's failure
   * does not keep the others from running.
   */
  async runDue(options: AbortOptions = {}): Promise<ScheduleRunResult[]> {
    const now = this.#deps.now()
    const results: ScheduleRunResult[] = []
    for (const r of await this.#deps.schedules.list(options)) {
      // A due slot, else the slot of a run whose process died after claiming it.
      const slot = dueSlot(r, now) ?? abandonedSlot(r, now)
      if (slot === undefined) continue
      const snapshotName = scheduledSnapshotName(r.snapshotPrefix, slot)
      try {
        const result = await this.#run(r, slot, snapshotName, options)
        if (result !== undefined) results.push(result)
      } catch (err) {
        if (options.signal?.aborted) throw err
        // The claim or the record of the outcome failed (the MetaStore): nothing to record it in.
        this.#deps.events.emit('scheduleError', asError(err), { schedule: r.name, snapshotName, phase: 'create' })
        results.push({ schedule: r.name, snapshotName, created: false, pruned: [], error: describe(err, this.#deps.now()) })
      }
    }
    return results
  }

  async #run(seen: ScheduleRecord, slot: number, snapshotName: string, options: AbortOptions): Promise<ScheduleRunResult | undefined> {
    const r = await this.#deps.schedules.claim(seen, slot, options)
    if (r === undefined) return undefined
    const heartbeat = this.#renewClaim(r, slot)
    try {
      return await this.#runClaimed(seen, r, slot, snapshotName, options)
    } finally {
      await heartbeat.stop()
    }
  }

  /**
   * Renews the claim `r` every `renewClaimMs` until `stop()` (which waits for a renewal in
   * flight) or until the claim is no longer this run's. A failed renewal is a `loopError`;
   * the run goes on (if its claim goes stale, a retry adopts what it made).
   */
  #renewClaim(r: ScheduleRecord, slot: number): { stop(): Promise<void> } {
    const { schedules, events } = this.#deps
    let since = r.runningSince as number
    let inFlight: Promise<void> | undefined
    const timer = setInterval(() => {
      if (inFlight !== undefined) return
      inFlight = schedules
        .renew(r.name, slot, since)
        .then((renewed) => {
          if (renewed === undefined) clearInterval(timer)
          else since = renewed
        })
        .catch((err: unknown) => {
          events.emit('loopError', asError(err), { loop: 'schedule' })
        })
        .finally(() => {
          inFlight = undefined
        })
    }, this.#deps.renewClaimMs ?? CLAIM_RENEW_MS)
    timer.unref()
    return {
      async stop() {
        clearInterval(timer)
        await inFlight
      },
    }
  }

  async #runClaimed(seen: ScheduleRecord, r: ScheduleRecord, slot: number, snapshotName: string, options: AbortOptions): Promise<ScheduleRunResult> {
    const { schedules, events } = this.#deps
    try {
      await this.#deps.create({ collectionName: r.collectionName, snapshotName, description: `schedule ${r.name}`, signal: options.signal }, r.name)
    } catch (err) {
      // A run stopped by close() or a lost election gives its slot back, so the next runner
      // takes it (if the snapshot committed meanwhile, that run finds it and goes on).
      if (options.signal?.aborted) {
        await schedules.unclaim(seen, slot).catch(() => undefined)
        throw err
      }
      // The slot's snapshot already exists and is this schedule's: a run whose outcome was lost
      // (given back after an abort, or a crash before its record) committed it.
      if (!(SnapshotError.is(err, 'ALREADY_EXISTS') && (await this.#deps.find(snapshotName))?.schedule === r.name)) {
        const error = describe(err, this.#deps.now())
        await schedules.finish(r.name, slot, { error }, options)
        events.emit('scheduleError', asError(err), { schedule: r.name, snapshotName, phase: 'create' })
        return { schedule: r.name, snapshotName, created: false, pruned: [], error }
      }
    }
    let pruned: string[] = []
    if (r.retention !== undefined) {
      try {
        const report = await this.#deps.prune({ policy: r.retention, signal: options.signal }, (s) => s.schedule === r.name)
        pruned = report.dropped.map((d) => d.name)
        if (report.failed.length > 0) {
          const f = report.failed[0]
          throw new SnapshotError(f.code as SnapshotError['code'], `retention could not drop ${report.failed.length} snapshot(s), first ${f.name}: ${f.message}`)
        }
      } catch (err) {
        if (options.signal?.aborted) throw err
        const error = describe(err, this.#deps.now())
        await schedules.finish(r.name, slot, { snapshotName, error }, options)
        events.emit('scheduleError', asError(err), { schedule: r.name, snapshotName, phase: 'prune' })
        return { schedule: r.name, snapshotName, created: true, pruned, error }
      }
    }
    await schedules.finish(r.name, slot, { snapshotName }, options)
    events.emit('scheduleRun', { schedule: r.name, snapshotName, pruned })
    return { schedule: r.name, snapshotName, created: true, pruned }
  }
}
