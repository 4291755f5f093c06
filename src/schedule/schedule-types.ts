import type { RetentionPolicy } from '../policy/retention.js'
import type { AbortOptions } from '../types.js'

/** A schedule as `SnapshotManager.putSchedule` takes it: exactly one of `everyMs` and `cron`. */
export interface ScheduleDefinition {
  /** 1–128 characters of `[A-Za-z0-9_.-]`, starting with a letter, digit or `_`, without `..`. */
  name: string
  /** The collection to snapshot. */
  collectionName: string
  /** Run every this many milliseconds (≥ 1,000), counted from when the schedule was put. */
  everyMs?: number
  /** Run at the times of this cron expression (5 fields, or 6 with seconds first), read in `timeZone`. */
  cron?: string
  /** Time zone of `cron`. @default 'UTC' */
  timeZone?: string
  /** Snapshots are named `{snapshotPrefix}-{UTC yyyyMMdd-HHmmss of the slot}`. @default name */
  snapshotPrefix?: string
  /** Applied after each run to the snapshots this schedule created (and only those). */
  retention?: RetentionPolicy
}

/** Request of `SnapshotManager.putSchedule`. */
export interface PutScheduleRequest extends ScheduleDefinition, AbortOptions {}

/** A failed run, as `listSchedules` reports it. */
export interface ScheduleError {
  /** The `SnapshotError` code (`IO_ERROR` for anything else). */
  code: string
  message: string
  /** When the run failed, epoch milliseconds. */
  at: number
}

/** A schedule with what it did last and what it does next. */
export interface ScheduleInfo extends ScheduleDefinition {
  snapshotPrefix: string
  /** When the schedule was put (or its timing last changed); `everyMs` slots count from here. */
  createdAt: number
  /** When the last run started, epoch milliseconds. */
  lastRunAt?: number
  /** The snapshot the last successful run created. */
  lastSnapshot?: string
  /** Why the last run failed; cleared by a run that succeeds. */
  lastError?: ScheduleError
  /** The next slot, epoch milliseconds; absent when the cron expression has no future time. */
  nextRunAt?: number
}

/** Payload of the `scheduleRun` event. */
export interface ScheduleRunEvent {
  schedule: string
  snapshotName: string
  /** Snapshots the schedule's retention dropped after the run. */
  pruned: string[]
}

/** Context of the `scheduleError` event. */
export interface ScheduleErrorContext {
  schedule: string
  /** The snapshot the run was creating; absent when the run failed before that. */
  snapshotName?: string
  /** `create`: the snapshot could not be created; `prune`: it was, and the retention failed. */
  phase: 'create' | 'prune'
}

/** What one scheduled run did (`SnapshotManager.runDueSchedules`). */
export interface ScheduleRunResult extends ScheduleRunEvent {
  /** Why the run failed: the snapshot was not created, or (with `snapshotName` created) its retention failed. */
  error?: ScheduleError
}
