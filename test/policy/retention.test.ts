import { describe, expect, it } from 'vitest'
import { applyRetention, formatSpan, isoWeek, validateRetentionPolicy, type RetentionItem } from '../../src/policy/retention.js'
import { SnapshotError } from '../../src/errors.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

function items(times: number[], group = 'c'): RetentionItem[] {
  return times.map((createdAt, i) => ({ name: `s${i}`, createdAt, group }))
}

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof SnapshotError ? err.code : (err as Error).name
  }
  return undefined
}

describe('isoWeek', () => {
  it('puts the days around a 53-week year where ISO 8601 does', () => {
    expect(isoWeek(2020, 12, 31)).toEqual({ year: 2020, week: 53 })
    expect(isoWeek(2021, 1, 3)).toEqual({ year: 2020, week: 53 })
    expect(isoWeek(2021, 1, 4)).toEqual({ year: 2021, week: 1 })
    expect(isoWeek(2026, 12, 31)).toEqual({ year: 2026, week: 53 })
    expect(isoWeek(2027, 1, 1)).toEqual({ year: 2026, week: 53 })
    expect(isoWeek(2024, 12, 30)).toEqual({ year: 2025, week: 1 })
    expect(isoWeek(2026, 12, 4)).toEqual({ year: 2026, week: 49 })
  })
})

describe('applyRetention', () => {
  it('prunes a week of hourly snapshots to 24 hourly and 7 daily', () => {
    const start = Date.UTC(2026, 10, 28, 0, 30)
    const history = items(Array.from({ length: 7 * 24 }, (_, i) => start + i * HOUR))
    const { kept, dropped } = applyRetention(history, { keepHourly: 24, keepDaily: 7 })
    // The 24 newest hours (one day exactly) and the last snapshot of each of the 6 days before.
    expect(kept).toHaveLength(30)
    expect(dropped).toHaveLength(7 * 24 - 30)
    expect(kept[0]).toEqual({ name: 's167', reasons: ['hourly 2026-12-04 23:00', 'daily 2026-12-04'] })
    expect(kept.at(-1)).toEqual({ name: 's23', reasons: ['daily 2026-11-28'] })
  })

  it('buckets days in the time zone given', () => {
    // 23:30 UTC on Dec 4 is 00:30 on Dec 5 in Paris; 22:30 UTC is still Dec 4 there.
    const history = items([Date.UTC(2026, 11, 4, 22, 30), Date.UTC(2026, 11, 4, 23, 30)])
    expect(applyRetention(history, { keepDaily: 5 }).kept.map((k) => k.name)).toEqual(['s1'])
    expect(applyRetention(history, { keepDaily: 5, timeZone: 'Europe/Paris' }).kept).toEqual([
      { name: 's1', reasons: ['daily 2026-12-05'] },
      { name: 's0', reasons: ['daily 2026-12-04'] },
    ])
  })

  it('labels weeks with their ISO year across a 53-week year', () => {
    const history = items([Date.UTC(2020, 11, 30), Date.UTC(2021, 0, 2), Date.UTC(2021, 0, 4)])
    expect(applyRetention(history, { keepWeekly: 3 }).kept).toEqual([
      { name: 's2', reasons: ['weekly 2021-W01'] },
      { name: 's1', reasons: ['weekly 2020-W53'] },
    ])
  })

  it('measures keepWithinMs from the newest snapshot, so a stalled schedule drops nothing', () => {
    // Hourly for two days, then nothing for a month: "now" is far past all of them.
    const history = items(Array.from({ length: 48 }, (_, i) => Date.UTC(2026, 9, 1) + i * HOUR))
    const { kept, dropped } = applyRetention(history, { keepWithinMs: 2 * DAY })
    expect(dropped).toEqual([])
    expect(kept.every((k) => k.reasons.join() === 'within 2d')).toBe(true)
    // Strictly newer than 10 h before the newest (restic's --keep-within): the newest and 9 before it.
    expect(applyRetention(history, { keepWithinMs: 10 * HOUR }).kept).toHaveLength(10)
  })

  it('always keeps snapshots with keep reasons and lists every reason', () => {
    const history: RetentionItem[] = [
      { name: 'old', createdAt: 1_000, group: 'c', keepReasons: ['held: legal'] },
      { name: 'mid', createdAt: 2_000, group: 'c' },
      { name: 'new', createdAt: 3_000, group: 'c', keepReasons: ['restore 7 reads it'] },
    ]
    expect(applyRetention(history, { keepLast: 1, maxCount: 1 })).toEqual({
      kept: [
        { name: 'new', reasons: ['last 1', 'restore 7 reads it'] },
        { name: 'old', reasons: ['held: legal'] },
      ],
      dropped: ['mid'],
    })
  })

  it('keeps held snapshots outside maxCount: holds never push out what the rules keep', () => {
    const history: RetentionItem[] = [
      ...['h1', 'h2', 'h3'].map((name, i) => ({ name, createdAt: i, group: 'c', keepReasons: ['held: legal'] })),
      { name: 'newest', createdAt: 10, group: 'c' },
    ]
    expect(applyRetention(history, { keepLast: 3, maxCount: 3 })).toEqual({
      kept: [
        { name: 'newest', reasons: ['last 3'] },
        { name: 'h3', reasons: ['last 3', 'held: legal'] },
        { name: 'h2', reasons: ['last 3', 'held: legal'] },
        { name: 'h1', reasons: ['held: legal'] },
      ],
      dropped: [],
    })
  })

  it('tops up to minCount with the newest and caps at maxCount from the oldest', () => {
    const history = items([1_000, 2_000, 3_000, 4_000, 5_000])
    expect(applyRetention(history, { keepLast: 1, minCount: 3 }).kept).toEqual([
      { name: 's4', reasons: ['last 1'] },
      { name: 's3', reasons: ['min 3'] },
      { name: 's2', reasons: ['min 3'] },
    ])
    expect(applyRetention(history, { keepLast: 5, maxCount: 2 }).dropped).toEqual(['s2', 's1', 's0'])
  })

  it('prunes each group on its own and orders groups by name', () => {
    const history = [...items([1, 2, 3], 'b'), ...items([1, 2], 'a').map((i) => ({ ...i, name: `a-${i.name}` }))]
    const { kept, dropped } = applyRetention(history, { keepLast: 1 })
    expect(kept.map((k) => k.name)).toEqual(['a-s1', 's2'])
    expect(dropped).toEqual(['a-s0', 's1', 's0'])
  })

  it('counts the later of two equal times as the newer', () => {
    expect(applyRetention(items([5, 5, 5]), { keepLast: 1 }).kept.map((k) => k.name)).toEqual(['s2'])
  })
})

describe('validateRetentionPolicy', () => {
  it('rejects policies that could keep less than meant', () => {
    expect(code(() => validateRetentionPolicy({}))).toBe('INVALID_ARGUMENT')
    expect(code(() => validateRetentionPolicy({ minCount: 3, maxCount: 5 }))).toBe('INVALID_ARGUMENT')
    expect(code(() => validateRetentionPolicy({ keepDayly: 7 }))).toBe('INVALID_ARGUMENT')
    expect(code(() => validateRetentionPolicy({ keepLast: 0 }))).toBe('INVALID_ARGUMENT')
    expect(code(() => validateRetentionPolicy({ keepLast: 1.5 }))).toBe('INVALID_ARGUMENT')
    expect(code(() => validateRetentionPolicy({ keepLast: 3, minCount: 5, maxCount: 4 }))).toBe('INVALID_ARGUMENT')
    expect(code(() => validateRetentionPolicy({ keepLast: 3, timeZone: 'Mars/Olympus' }))).toBe('INVALID_ARGUMENT')
    expect(code(() => validateRetentionPolicy({ keepLast: '3' }))).toBe('TypeError')
    expect(code(() => validateRetentionPolicy(null))).toBe('TypeError')
    expect(code(() => validateRetentionPolicy({ keepLast: 3, timeZone: 'Asia/Tokyo', minCount: 2, maxCount: 9 }))).toBeUndefined()
  })
})

describe('formatSpan', () => {
  it('uses the largest whole unit', () => {
    expect([formatSpan(7 * DAY), formatSpan(36 * HOUR), formatSpan(90_000), formatSpan(1_500)]).toEqual(['7d', '36h', '90s', '1500ms'])
  })
})
