import { EventEmitter } from 'node:events'
import type { RestoreJobInfo } from './restore/job-types.js'
import type { SnapshotInfo } from './snapshot/snapshot-types.js'
import type { GcReport } from './gc/gc-types.js'
import type { DemotionReason } from './cluster/leadership.js'
import type { ScheduleErrorContext, ScheduleRunEvent } from './schedule/schedule-types.js'

/** Events of a {@link SnapshotManager} and their payloads. */
export interface SnapshotManagerEvents {
  /** A snapshot was committed. */
  snapshotCreated: [info: SnapshotInfo]
  /** A snapshot was dropped (its objects and record are gone). */
  snapshotDropped: [info: { id: number; name: string; collectionId: number }]
  /** A restore job was accepted. */
  restoreStarted: [job: RestoreJobInfo]
  /** A restore job made progress (throttled by `progressThrottleMs`; built only when listened to). */
  restoreProgress: [job: RestoreJobInfo]
  /** A restore job finished: completed, failed or cancelled. */
  restoreFinished: [job: RestoreJobInfo]
  /** A GC pass finished. */
  gcCompleted: [report: GcReport]
  /** A background loop failed; the loop keeps running. Never thrown. */
  loopError: [error: Error, context: { loop: 'restore' | 'gc' | 'recovery' | 'leadership' | 'schedule' }]
  /** A schedule created its snapshot (and applied its retention: `pruned`). */
  scheduleRun: [run: ScheduleRunEvent]
  /** A scheduled run failed (recorded as the schedule's `lastError`; the next slot runs as usual). Never thrown. */
  scheduleError: [error: Error, context: ScheduleErrorContext]
  /**
   * This manager started (`leader: true`) or stopped running the background loops
   * (restore checker/inspector, GC, recovery, schedules). With several managers on one etcd, one
   * leads at a time; on a single machine the manager leads from `open()` to `close()`.
   */
  leadershipChanged: [state: { leader: boolean; reason?: DemotionReason }]
}

/** A typed EventEmitter. */
export class TypedEmitter<E extends { [K in keyof E]: unknown[] }> extends EventEmitter {
  override on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void)
  }

  override once<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return super.once(event, listener as (...args: unknown[]) => void)
  }

  override off<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    return super.off(event, listener as (...args: unknown[]) => void)
  }

  override emit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    return super.emit(event, ...args)
  }

  /** True when someone listens to `event` (progress payloads are only built then). */
  listens(event: keyof E & string): boolean {
    return this.listenerCount(event) > 0
  }
}
