import { SnapshotError } from '../errors.js'

/**
 * Retention (SPEC section 12), with restic's `forget` as the model: every rule keeps some
 * snapshots, and a snapshot is kept when any rule, or an always-keep reason, keeps it.
 * Pure: no store, no clock; `pruneSnapshots`, schedules and `pruneRepository` apply it.
 */

/** Which snapshots a prune keeps (SPEC section 12). Rules are OR'ed; at least one `keep*` rule is required. */
export interface RetentionPolicy {
  /** Keep the n newest snapshots. */
  keepLast?: number
  /** Keep the newest snapshot of each of the last n hours that have one (hours in `timeZone`). */
  keepHourly?: number
  /** Keep the newest snapshot of each of the last n days that have one. */
  keepDaily?: number
  /** Keep the newest snapshot of each of the last n ISO weeks (Monday to Sunday) that have one. */
  keepWeekly?: number
  /** Keep the newest snapshot of each of the last n months that have one. */
  keepMonthly?: number
  /** Keep the newest snapshot of each of the last n years that have one. */
  keepYearly?: number
  /**
   * Keep every snapshot taken less than this long before the **newest** snapshot (not before
   * now: a schedule that stopped never has its last snapshots pruned away).
   */
  keepWithinMs?: number
  /** Never keep fewer: the newest snapshots the rules dropped are kept until this many are (held snapshots and those a restore reads are not counted). */
  minCount?: number
  /** Never keep more: the oldest kept snapshots go first (held snapshots and those a restore reads are neither counted nor dropped). */
  maxCount?: number
  /** The IANA time zone of the calendar buckets. @default 'UTC' */
  timeZone?: string
}

/** One snapshot as retention sees it. */
export interface RetentionItem {
  name: string
  /** Epoch milliseconds. */
  createdAt: number
  /** Snapshots are pruned per group (per collection). */
  group: string
  /** Reasons this snapshot must be kept whatever the rules say (`held: legal`, `restore 12 reads it`). */
  keepReasons?: readonly string[]
}

/** A snapshot a prune keeps, with every reason that keeps it. */
export interface KeptSnapshot {
  name: string
  reasons: string[]
}

/** What {@link applyRetention} decides. */
export interface RetentionDecision {
  /** Kept snapshots: groups by name, newest first within a group. */
  kept: KeptSnapshot[]
  /** Snapshots to drop, in the same order. */
  dropped: string[]
}

const COUNT_RULES = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'] as const
const KNOWN = new Set<string>([...COUNT_RULES, 'keepWithinMs', 'minCount', 'maxCount', 'timeZone'])

/**
 * Throws unless `policy` is a valid {@link RetentionPolicy}: a wrong type is a `TypeError`;
 * an unknown field (a typo must not keep less than meant), a count or span that is not an
 * integer ≥ 1, `minCount` above `maxCount`, an unknown time zone or no `keep*` rule at all
 * is `INVALID_ARGUMENT`.
 */
export function validateRetentionPolicy(policy: unknown): asserts policy is RetentionPolicy {
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) throw new TypeError('Expected `policy` to be an object')
  const p = policy as Record<string, unknown>
  for (const field of Object.keys(p)) {
    if (!KNOWN.has(field)) throw new SnapshotError('INVALID_ARGUMENT', `unknown retention rule \`${field}\` (known: ${[...KNOWN].join(', ')})`)
  }
  for (const field of [...COUNT_RULES, 'keepWithinMs', 'minCount', 'maxCount']) {
    const v = p[field]
    if (v === undefined) continue
    if (typeof v !== 'number') throw new TypeError(`Expected \`${field}\` to be a number, got \`${v === null ? 'null' : typeof v}\``)
    if (!Number.isSafeInteger(v) || v < 1) throw new SnapshotError('INVALID_ARGUMENT', `\`${field}\` must be an integer ≥ 1, got ${v}`)
  }
  if (p.minCount !== undefined && p.maxCount !== undefined && (p.minCount as number) > (p.maxCount as number)) {
    throw new SnapshotError('INVALID_ARGUMENT', `\`minCount\` (${p.minCount}) is above \`maxCount\` (${p.maxCount})`)
  }
  if (p.timeZone !== undefined) {
    if (typeof p.timeZone !== 'string') throw new TypeError(`Expected \`timeZone\` to be a string, got \`${typeof p.timeZone}\``)
    calendar(p.timeZone)
  }
  if (![...COUNT_RULES, 'keepWithinMs'].some((field) => p[field] !== undefined)) {
    throw new SnapshotError('INVALID_ARGUMENT', 'a retention policy needs at least one rule: keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly or keepWithinMs')
  }
}

/** Local calendar fields of an instant. */
interface LocalTime {
  year: number
  month: number
  day: number
  hour: number
}

const calendars = new Map<string, Intl.DateTimeFormat>()

function calendar(timeZone: string): Intl.DateTimeFormat {
  let format = calendars.get(timeZone)
  if (format === undefined) {
    try {
      format = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', hourCycle: 'h23' })
    } catch (cause) {
      throw new SnapshotError('INVALID_ARGUMENT', `unknown time zone ${JSON.stringify(timeZone)} (use an IANA name such as 'Europe/Paris')`, { cause })
    }
    calendars.set(timeZone, format)
  }
  return format
}

function localTime(format: Intl.DateTimeFormat, at: number): LocalTime {
  const t: LocalTime = { year: 0, month: 0, day: 0, hour: 0 }
  for (const part of format.formatToParts(at)) {
    if (part.type === 'year' || part.type === 'month' || part.type === 'day' || part.type === 'hour') t[part.type] = Number(part.value)
  }
  return t
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

/** ISO 8601 week of a calendar date: the week (Monday first) holding its Thursday decides the year. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = Date.UTC(year, month - 1, day)
  const weekday = (new Date(date).getUTCDay() + 6) % 7 // Monday 0 … Sunday 6
  const thursday = new Date(date + (3 - weekday) * 86_400_000)
  const weekYear = thursday.getUTCFullYear()
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(weekYear, 0, 1)) / (7 * 86_400_000))
  return { year: weekYear, week }
}

type BucketRule = 'keepHourly' | 'keepDaily' | 'keepWeekly' | 'keepMonthly' | 'keepYearly'

/** Each bucket rule: its reason word and the bucket label of a local time. */
const BUCKETS: readonly [BucketRule, string, (t: LocalTime) => string][] = [
  ['keepHourly', 'hourly', (t) => `${t.year}-${pad(t.month)}-${pad(t.day)} ${pad(t.hour)}:00`],
  ['keepDaily', 'daily', (t) => `${t.year}-${pad(t.month)}-${pad(t.day)}`],
  [
    'keepWeekly',
    'weekly',
    (t) => {
      const w = isoWeek(t.year, t.month, t.day)
      return `${w.year}-W${pad(w.week)}`
    },
  ],
  ['keepMonthly', 'monthly', (t) => `${t.year}-${pad(t.month)}`],
  ['keepYearly', 'yearly', (t) => String(t.year)],
]

/** A span in the largest whole unit that divides it (`7d`, `36h`, `90s`, `1500ms`). */
export function formatSpan(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}

/**
 * Applies `policy` to `items`, per group. Within a group, newer means a later `createdAt`;
 * of two with the same `createdAt`, the one later in `items` is the newer.
 *
 * - `keepLast n` keeps the n newest (`last n`).
 * - `keepHourly` … `keepYearly n` walk from the newest and keep the first (newest) snapshot
 *   of each calendar bucket, in `timeZone`, until n buckets are kept (`daily 2026-12-04`,
 *   `weekly 2026-W49`: ISO weeks, whose year can differ from the calendar year).
 * - `keepWithinMs` keeps those taken less than that long before the group's newest (`within 7d`).
 * - Items with `keepReasons` are kept, with those reasons, outside the bounds below.
 * - `minCount` then keeps the newest dropped ones until the group has that many kept by the
 *   policy (`min n`); `maxCount` drops the oldest kept ones without `keepReasons` until at most
 *   that many are kept by the policy. Items with `keepReasons` count toward neither.
 *
 * Every kept snapshot lists every reason that keeps it, in the order above.
 */
export function applyRetention(items: readonly RetentionItem[], policy: RetentionPolicy): RetentionDecision {
  validateRetentionPolicy(policy)
  const format = calendar(policy.timeZone ?? 'UTC')
  const groups = new Map<string, { item: RetentionItem; order: number }[]>()
  items.forEach((item, order) => {
    let group = groups.get(item.group)
    if (group === undefined) groups.set(item.group, (group = []))
    group.push({ item, order })
  })
  const decision: RetentionDecision = { kept: [], dropped: [] }
  for (const name of [...groups.keys()].sort()) {
    const group = groups.get(name)!.sort((a, b) => b.item.createdAt - a.item.createdAt || b.order - a.order).map((g) => g.item)
    const reasons = group.map((): string[] => [])
    if (policy.keepLast !== undefined) for (let i = 0; i < Math.min(policy.keepLast, group.length); i++) reasons[i].push(`last ${policy.keepLast}`)
    const local = group.map((item) => localTime(format, item.createdAt))
    for (const [rule, word, label] of BUCKETS) {
      const n = policy[rule]
      if (n === undefined) continue
      let taken = 0
      let previous: string | undefined
      for (let i = 0; i < group.length && taken < n; i++) {
        const bucket = label(local[i])
        if (bucket === previous) continue
        previous = bucket
        reasons[i].push(`${word} ${bucket}`)
        taken++
      }
    }
    if (policy.keepWithinMs !== undefined && group.length > 0) {
      // Strictly newer than the span before the newest, as restic's --keep-within.
      const since = group[0].createdAt - policy.keepWithinMs
      for (let i = 0; i < group.length && group[i].createdAt > since; i++) reasons[i].push(`within ${formatSpan(policy.keepWithinMs)}`)
    }
    // Snapshots with keep reasons (held, read by a restore) are kept outside the policy: they
    // count toward neither bound, so holds never make maxCount drop what the rules keep.
    const forced = group.map((item) => (item.keepReasons ?? []).length > 0)
    group.forEach((item, i) => reasons[i].push(...(item.keepReasons ?? [])))
    let count = reasons.filter((r, i) => r.length > 0 && !forced[i]).length
    if (policy.minCount !== undefined) {
      for (let i = 0; i < group.length && count < policy.minCount; i++) {
        if (reasons[i].length > 0) continue
        reasons[i].push(`min ${policy.minCount}`)
        count++
      }
    }
    if (policy.maxCount !== undefined) {
      for (let i = group.length - 1; i >= 0 && count > policy.maxCount; i--) {
        if (reasons[i].length === 0 || forced[i]) continue
        reasons[i] = []
        count--
      }
    }
    group.forEach((item, i) => {
      if (reasons[i].length > 0) decision.kept.push({ name: item.name, reasons: reasons[i] })
      else decision.dropped.push(item.name)
    })
  }
  return decision
}

/** A snapshot a prune keeps, with every reason that keeps it. */
export interface PruneKept extends KeptSnapshot {
  collectionName: string
}

/** A snapshot a prune drops (or, with `dryRun`, would drop). */
export interface PrunedSnapshot {
  name: string
  collectionName: string
  /** What dropping this snapshot alone frees (its `exclusiveBytes` before the prune). */
  reclaimableBytes: number
}

/** A drop a prune attempted that failed; the prune went on with the others. */
export interface PruneFailure {
  name: string
  /** The `SnapshotError` code (`IO_ERROR` for anything else). */
  code: string
  message: string
}

/** What `pruneSnapshots` and `pruneRepository` return. */
export interface PruneReport {
  /** True when nothing was changed. */
  dryRun: boolean
  /** Kept snapshots with every reason: by collection name, newest first. */
  kept: PruneKept[]
  /** Dropped snapshots (would be, with `dryRun`), in the same order. */
  dropped: PrunedSnapshot[]
  /** Drops that failed (always empty with `dryRun`); those snapshots are still there. */
  failed: PruneFailure[]
  /** What dropping `dropped` frees together (more than the sum of their `reclaimableBytes` when they share files). A dry run reports what the real run would free. */
  reclaimedBytes: number
}
