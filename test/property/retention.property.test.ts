import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { applyRetention, type RetentionItem, type RetentionPolicy } from '../../src/policy/retention.js'

/**
 * `applyRetention` against an independent model on generated snapshot histories: the
 * model reads local time through another Intl path, computes ISO weeks from the Monday of
 * the week holding January 4th, and keeps, per calendar bucket rule, the newest snapshot of
 * each of the n newest buckets (grouping first, where the code walks).
 */

const LONG = process.env.VECSNAP_LONG === '1'
const DAY = 86_400_000

interface Local {
  year: number
  month: number
  day: number
  hour: number
}

function modelLocal(at: number, timeZone: string): Local {
  // 'sv-SE' prints "2026-12-04 13:05:00".
  const text = new Date(at).toLocaleString('sv-SE', { timeZone, hourCycle: 'h23' })
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):/.exec(text)
  if (m === null) throw new Error(`unexpected local time ${text}`)
  return { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]), hour: Number(m[4]) }
}

/** Monday of ISO week 1 of `year`: the week holding January 4th. */
function week1Monday(year: number): number {
  const jan4 = Date.UTC(year, 0, 4)
  return jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * DAY
}

function modelIsoWeek(t: Local): string {
  const d = Date.UTC(t.year, t.month - 1, t.day)
  let year = t.year + 1
  while (week1Monday(year) > d) year--
  const week = Math.floor((d - week1Monday(year)) / (7 * DAY)) + 1
  return `${year}-W${String(week).padStart(2, '0')}`
}

const p2 = (n: number): string => String(n).padStart(2, '0')

const RULES: [keyof RetentionPolicy, string, (t: Local) => string][] = [
  ['keepHourly', 'hourly', (t) => `${t.year}-${p2(t.month)}-${p2(t.day)} ${p2(t.hour)}:00`],
  ['keepDaily', 'daily', (t) => `${t.year}-${p2(t.month)}-${p2(t.day)}`],
  ['keepWeekly', 'weekly', modelIsoWeek],
  ['keepMonthly', 'monthly', (t) => `${t.year}-${p2(t.month)}`],
  ['keepYearly', 'yearly', (t) => String(t.year)],
]

function spanLabel(ms: number): string {
  if (ms % DAY === 0) return `${ms / DAY}d`
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  return `${ms}ms`
}

function model(items: RetentionItem[], policy: RetentionPolicy): { kept: Map<string, string[]>; dropped: Set<string> } {
  const tz = policy.timeZone ?? 'UTC'
  const kept = new Map<string, string[]>()
  const dropped = new Set<string>()
  const groups = [...new Set(items.map((i) => i.group))]
  for (const g of groups) {
    const members = items.map((item, order) => ({ item, order })).filter((x) => x.item.group === g)
    const newer = (a: (typeof members)[number], b: (typeof members)[number]): boolean => a.item.createdAt > b.item.createdAt || (a.item.createdAt === b.item.createdAt && a.order > b.order)
    const byAge = [...members].sort((a, b) => (newer(a, b) ? -1 : newer(b, a) ? 1 : 0))
    const reasons = new Map<number, string[]>(members.map((m) => [m.order, []]))
    if (policy.keepLast !== undefined) byAge.slice(0, policy.keepLast).forEach((m) => reasons.get(m.order)!.push(`last ${policy.keepLast}`))
    for (const [rule, word, label] of RULES) {
      const n = policy[rule] as number | undefined
      if (n === undefined) continue
      const buckets = new Map<string, (typeof members)[number]>()
      for (const m of members) {
        const b = label(modelLocal(m.item.createdAt, tz))
        const best = buckets.get(b)
        if (best === undefined || newer(m, best)) buckets.set(b, m)
      }
      const newestFirst = [...buckets].sort((x, y) => (newer(x[1], y[1]) ? -1 : 1)).slice(0, n)
      for (const [b, m] of newestFirst) reasons.get(m.order)!.push(`${word} ${b}`)
    }
    // Restore the documented reason order (last, hourly … yearly, within, keepReasons, min).
    if (policy.keepWithinMs !== undefined) {
      const newest = Math.max(...members.map((m) => m.item.createdAt))
      for (const m of members) if (newest - m.item.createdAt < policy.keepWithinMs) reasons.get(m.order)!.push(`within ${spanLabel(policy.keepWithinMs)}`)
    }
    const held = (m: (typeof members)[number]): boolean => (m.item.keepReasons ?? []).length > 0
    for (const m of members) reasons.get(m.order)!.push(...(m.item.keepReasons ?? []))
    // Held ones are outside the bounds: they count toward neither minCount nor maxCount.
    let count = members.filter((m) => reasons.get(m.order)!.length > 0 && !held(m)).length
    for (const m of byAge) {
      if (policy.minCount === undefined || count >= policy.minCount) break
      if (reasons.get(m.order)!.length === 0) {
        reasons.get(m.order)!.push(`min ${policy.minCount}`)
        count++
      }
    }
    for (const m of [...byAge].reverse()) {
      if (policy.maxCount === undefined || count <= policy.maxCount) break
      if (reasons.get(m.order)!.length > 0 && !held(m)) {
        reasons.set(m.order, [])
        count--
      }
    }
    for (const m of members) {
      const r = reasons.get(m.order)!
      if (r.length > 0) kept.set(m.item.name, r)
      else dropped.add(m.item.name)
    }
  }
  return { kept, dropped }
}

const ZONES = ['UTC', 'America/New_York', 'Europe/Paris', 'Asia/Kolkata', 'Pacific/Chatham', 'Australia/Lord_Howe']
// Around years with an ISO week 53 (2020, 2026) and DST changes.
const BASES = [Date.UTC(2020, 11, 26), Date.UTC(2026, 11, 27), Date.UTC(2026, 2, 28), Date.UTC(2026, 9, 24), Date.UTC(2021, 0, 1)]

const itemsArb = fc
  .array(
    fc.record({
      base: fc.constantFrom(...BASES),
      offsetMs: fc.oneof(fc.integer({ min: 0, max: 20 * DAY }), fc.integer({ min: 0, max: 6 * 3_600_000 }).map((h) => h - (h % 600_000))),
      group: fc.constantFrom('a', 'b'),
      held: fc.oneof({ weight: 5, arbitrary: fc.constant<string[]>([]) }, { weight: 1, arbitrary: fc.constant(['held: legal']) }),
    }),
    { maxLength: 40 },
  )
  .map((raw) => raw.map((r, i): RetentionItem => ({ name: `s${i}`, createdAt: r.base + r.offsetMs, group: r.group, keepReasons: r.held })))

const count = fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined })
const policyArb = fc
  .record({
    keepLast: count,
    keepHourly: count,
    keepDaily: count,
    keepWeekly: count,
    keepMonthly: count,
    keepYearly: count,
    keepWithinMs: fc.option(fc.constantFrom(3_600_000, DAY, 7 * DAY, 90_000), { nil: undefined }),
    minCount: count,
    maxCount: fc.option(fc.integer({ min: 8, max: 30 }), { nil: undefined }),
    timeZone: fc.option(fc.constantFrom(...ZONES), { nil: undefined }),
  })
  .map((p) => Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as RetentionPolicy)
  .filter((p) => ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly', 'keepWithinMs'].some((k) => k in p))

describe('applyRetention against a model', () => {
  it('keeps and drops what the model does, with the same reasons', () => {
    fc.assert(
      fc.property(itemsArb, policyArb, (items, policy) => {
        const got = applyRetention(items, policy)
        const want = model(items, policy)
        expect(new Map(got.kept.map((k) => [k.name, k.reasons]))).toEqual(want.kept)
        expect(new Set(got.dropped)).toEqual(want.dropped)
        // Safety the rules promise whatever the policy.
        for (const item of items) if ((item.keepReasons ?? []).length > 0) expect(want.kept.has(item.name)).toBe(true)
        for (const g of ['a', 'b']) {
          const inGroup = items.filter((i) => i.group === g)
          const byPolicy = got.kept.filter((k) => inGroup.some((i) => i.name === k.name && (i.keepReasons ?? []).length === 0)).length
          const unheld = inGroup.filter((i) => (i.keepReasons ?? []).length === 0).length
          if (policy.minCount !== undefined) expect(byPolicy).toBeGreaterThanOrEqual(Math.min(unheld, policy.minCount))
          if (policy.maxCount !== undefined) expect(byPolicy).toBeLessThanOrEqual(policy.maxCount)
          // The newest snapshot of a group is kept by any rule but maxCount, which keeps the newest first.
          if (inGroup.length > 0) {
            const newest = inGroup.reduce((a, b) => (b.createdAt >= a.createdAt ? b : a))
            expect(got.dropped).not.toContain(newest.name)
          }
        }
      }),
      { numRuns: LONG ? 20_000 : 400 },
    )
  })
})
