import { Option, type Command } from 'commander'
import { SnapshotError } from '../index.js'
import type { RetentionPolicy } from '../index.js'

/**
 * The retention flags of `vecsnap prune`, `schedules put` and `repo prune`, restic-style:
 * `--keep-last 3 --keep-daily 7 --keep-within 2d …`.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }

/** `90m`, `36h`, `1d12h`, `2w`, `500ms`, or plain milliseconds → milliseconds; `INVALID_ARGUMENT` otherwise. */
export function parseDuration(text: string): number {
  if (/^\d+$/.test(text)) return Number(text)
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d|w)/g)]
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new SnapshotError('INVALID_ARGUMENT', `invalid duration ${JSON.stringify(text)}: use e.g. 90m, 36h, 1d12h, 2w or milliseconds`)
  }
  return parts.reduce((total, p) => total + Number(p[1]) * UNIT_MS[p[2]], 0)
}

function count(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value)
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new SnapshotError('INVALID_ARGUMENT', `${flag} must be an integer ≥ 1, got ${value}`)
    return n
  }
}

const COUNTS: [flag: string, key: keyof RetentionPolicy, help: string][] = [
  ['--keep-last', 'keepLast', 'keep the N newest'],
  ['--keep-hourly', 'keepHourly', 'keep the newest of each of the last N hours'],
  ['--keep-daily', 'keepDaily', 'keep the newest of each of the last N days'],
  ['--keep-weekly', 'keepWeekly', 'keep the newest of each of the last N ISO weeks'],
  ['--keep-monthly', 'keepMonthly', 'keep the newest of each of the last N months'],
  ['--keep-yearly', 'keepYearly', 'keep the newest of each of the last N years'],
  ['--min-count', 'minCount', 'never keep fewer than N'],
  ['--max-count', 'maxCount', 'never keep more than N (held ones excepted)'],
]

/** Adds the retention flags to `cmd`. */
export function addRetentionOptions(cmd: Command): Command {
  for (const [flag, , help] of COUNTS) cmd.addOption(new Option(`${flag} <n>`, help).argParser(count(flag)))
  cmd.addOption(new Option('--keep-within <duration>', 'keep all taken within this span before the newest (e.g. 2d, 36h)').argParser(parseDuration))
  cmd.addOption(new Option('--time-zone <zone>', 'IANA time zone of the calendar buckets (default UTC)'))
  return cmd
}

/** The policy the flags describe; undefined when none is given. */
export function retentionPolicy(o: Record<string, unknown>): RetentionPolicy | undefined {
  const policy: RetentionPolicy = {}
  for (const [, key] of COUNTS) if (o[key] !== undefined) Object.assign(policy, { [key]: o[key] })
  if (o.keepWithin !== undefined) policy.keepWithinMs = o.keepWithin as number
  if (o.timeZone !== undefined) policy.timeZone = o.timeZone as string
  return Object.keys(policy).length === 0 ? undefined : policy
}
