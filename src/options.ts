import { SnapshotError } from './errors.js'
import type { LoopLeadership } from './cluster/leadership.js'
import type { MetaStore } from './meta/meta-store.js'
import type { CopyMode, ObjectStore } from './storage/object-store.js'

/** Options of {@link SnapshotManager}. Every option but `meta` and `objects` is optional. */
export interface SnapshotManagerOptions {
  /** Where catalog, snapshot records and restore jobs live. */
  meta: MetaStore
  /** Where segment files and snapshot objects live; the host writes its files through the same store. */
  objects: ObjectStore
  /** Copy tasks in flight. @default 8 */
  restoreConcurrency?: number
  /** Segments per copy task, as Milvus's MaxSegmentsPerCopyTask; at most 30 (a task registers its segments in one bounded batch). @default 10 */
  maxSegmentsPerCopyTask?: number
  /** Restore checker/inspector tick, as Milvus's CopySegmentCheckInterval; at most 2^31 − 1 (as every interval option). @default 2000 */
  checkIntervalMs?: number
  /** A restore job still running after this fails. @default 86_400_000 (24 h) */
  restoreTimeoutMs?: number
  /** Finished restore jobs are kept this long, then removed. @default 10_800_000 (3 h) */
  restoreJobRetentionMs?: number
  /** Background GC interval; 0 disables the loop (`runGc()` still works). @default 3_600_000 (1 h) */
  gcIntervalMs?: number
  /** Files of dropped segments, indexes and collections are kept this long after the drop. @default 10_800_000 (3 h) */
  dropGraceMs?: number
  /** Unreferenced objects under `files/` younger than this are kept. @default 86_400_000 (24 h) */
  orphanGraceMs?: number
  /** Filesystem copy mode of restores; S3 is always server-side. @default 'auto' */
  copyMode?: CopyMode
  /**
   * Check every file a restore copies against the size the snapshot records before its
   * segment counts as done (a mismatch fails the job). On a filesystem the store measures
   * each copy anyway; on S3, whose CopyObject reports no size, it costs a HeadObject per
   * file (about twice the requests of a restore). `false` skips that lookup on S3, trusting
   * the bucket (`verifySnapshot` still checks it). @default true
   */
  verifyCopiedSizes?: boolean
  /** Minimum gap between two `restoreProgress` events of one job. @default 250 */
  progressThrottleMs?: number
  /**
   * How often the elected loop runner looks for due schedules (a run starts within this of
   * its slot); 0: this manager never runs schedules on its own, even when elected (a tool
   * such as the CLI; `runDueSchedules()` still runs them on demand). @default 1000
   */
  scheduleIntervalMs?: number
  /** Clock, epoch milliseconds (tests inject a fake). @default Date.now */
  now?: () => number
  /**
   * Picks the one manager, among all sharing `meta`, that runs the background loops
   * (restore checker/inspector, GC, recovery); the others serve API calls only.
   * @default meta.createLeadership('loops') when the store has it (`EtcdMetaStore`: an etcd
   * election with a 10 s lease), else a `LocalLeadership` (always elected)
   */
  leadership?: LoopLeadership
}

/** Options after defaults, frozen. */
export type ResolvedOptions = Readonly<Required<Omit<SnapshotManagerOptions, 'meta' | 'objects' | 'leadership'>>>

/** The defaults of every optional option. */
export const DEFAULTS: ResolvedOptions = Object.freeze({
  restoreConcurrency: 8,
  maxSegmentsPerCopyTask: 10,
  checkIntervalMs: 2_000,
  restoreTimeoutMs: 24 * 3_600_000,
  restoreJobRetentionMs: 10_800_000,
  gcIntervalMs: 3_600_000,
  dropGraceMs: 10_800_000,
  orphanGraceMs: 86_400_000,
  copyMode: 'auto',
  verifyCopiedSizes: true,
  progressThrottleMs: 250,
  scheduleIntervalMs: 1_000,
  now: Date.now,
})

const COPY_MODES: readonly CopyMode[] = ['auto', 'link', 'copy']

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value
}

function integer(options: Record<string, unknown>, name: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  const value = options[name]
  if (value === undefined) return
  if (typeof value !== 'number') throw new TypeError(`Expected \`${name}\` to be a number, got \`${typeName(value)}\``)
  if (!Number.isSafeInteger(value) || value < min) throw new SnapshotError('INVALID_ARGUMENT', `\`${name}\` must be an integer ≥ ${min}, got ${value}`)
  if (value > max) throw new SnapshotError('INVALID_ARGUMENT', `\`${name}\` must be an integer ≤ ${max}, got ${value}`)
}

/** Longest timer Node runs as asked (a longer one fires at once). */
export const MAX_TIMER_MS = 2_147_483_647

/**
 * Most segments per copy task: a task registers its target segments in one batch (two
 * writes each, plus three), which must stay within 64 operations (SPEC section 11).
 */
export const MAX_SEGMENTS_PER_COPY_TASK = 30

function isPort(value: unknown, methods: string[]): boolean {
  return typeof value === 'object' && value !== null && methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function')
}

/**
 * Validates options and fills defaults. The rule everywhere (manager, catalog, calls): a
 * value of the wrong type (not a number, not a string, a missing port) is programmer misuse
 * and throws a `TypeError`, worded like p-queue's; a value of the right type that breaks a
 * rule (out of range, not one of the allowed strings, a bad name) is a `SnapshotError` with
 * code `INVALID_ARGUMENT` (SPEC section 8).
 */
export function resolveOptions(options: SnapshotManagerOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError(`Expected \`options\` to be an object, got \`${typeName(options)}\``)
  if (!isPort(options.meta, ['open', 'close', 'get', 'batch', 'iterate'])) throw new TypeError('Expected `meta` to be a MetaStore')
  if (!isPort(options.objects, ['put', 'get', 'head', 'list', 'copy', 'delete'])) throw new TypeError('Expected `objects` to be an ObjectStore')
  const o = options as unknown as Record<string, unknown>
  integer(o, 'restoreConcurrency', 1)
  integer(o, 'maxSegmentsPerCopyTask', 1, MAX_SEGMENTS_PER_COPY_TASK)
  // Options that become timer delays stay within what a timer runs (a longer one would fire at once, in a loop).
  integer(o, 'checkIntervalMs', 1, MAX_TIMER_MS)
  integer(o, 'restoreTimeoutMs', 1)
  integer(o, 'restoreJobRetentionMs', 0)
  integer(o, 'gcIntervalMs', 0, MAX_TIMER_MS)
  integer(o, 'dropGraceMs', 0)
  integer(o, 'orphanGraceMs', 0)
  integer(o, 'progressThrottleMs', 0, MAX_TIMER_MS)
  integer(o, 'scheduleIntervalMs', 0, MAX_TIMER_MS)
  if (options.copyMode !== undefined && typeof options.copyMode !== 'string') throw new TypeError(`Expected \`copyMode\` to be a string, got \`${typeName(options.copyMode)}\``)
  if (options.copyMode !== undefined && !COPY_MODES.includes(options.copyMode)) {
    throw new SnapshotError('INVALID_ARGUMENT', `\`copyMode\` must be one of ${COPY_MODES.map((m) => `'${m}'`).join(', ')}, got '${options.copyMode}'`)
  }
  if (options.verifyCopiedSizes !== undefined && typeof options.verifyCopiedSizes !== 'boolean') {
    throw new TypeError(`Expected \`verifyCopiedSizes\` to be a boolean, got \`${typeName(options.verifyCopiedSizes)}\``)
  }
  if (options.leadership !== undefined && !isPort(options.leadership, ['campaign', 'resign'])) throw new TypeError('Expected `leadership` to be a LoopLeadership')
  if (options.now !== undefined && typeof options.now !== 'function') throw new TypeError(`Expected \`now\` to be a function, got \`${typeName(options.now)}\``)
  const resolved: Record<string, unknown> = { ...DEFAULTS }
  for (const key of Object.keys(DEFAULTS)) if (o[key] !== undefined) resolved[key] = o[key]
  return Object.freeze(resolved) as ResolvedOptions
}
