import { describe, expect, it } from 'vitest'
import { dueSlot, type ScheduleRecord } from '../../src/schedule/schedule-store.js'

const T0 = Date.UTC(2026, 0, 1)
const DAY = 86_400_000

function cron(expression: string, extra: Partial<ScheduleRecord> = {}): ScheduleRecord {
  return { name: 'c', collectionName: 'docs', snapshotPrefix: 'c', cron: expression, createdAt: T0, ...extra }
}

/** The slot an overdue schedule runs: the latest one that passed, found without walking the whole downtime. */
describe('dueSlot', () => {
  it('is the latest cron slot after a long downtime', () => {
    expect(dueSlot(cron('* * * * *'), T0 + 8 * DAY + 30_500)).toBe(T0 + 8 * DAY)
    expect(dueSlot(cron('* * * * * *'), T0 + DAY + 1_500)).toBe(T0 + DAY + 1_000)
    expect(dueSlot(cron('0 3 * * *'), T0 + 40 * DAY + 5 * 3_600_000)).toBe(T0 + 40 * DAY + 3 * 3_600_000)
    expect(dueSlot(cron('0 0 1 1 *'), T0 + 400 * DAY)).toBe(Date.UTC(2027, 0, 1))
  })

  it('is undefined before the next slot, and counts from the last slot run', () => {
    expect(dueSlot(cron('0 * * * *'), T0 + 59 * 60_000)).toBeUndefined()
    expect(dueSlot(cron('0 * * * *', { lastSlot: T0 + 3_600_000 }), T0 + 3_600_000 + 10)).toBeUndefined()
    expect(dueSlot(cron('0 * * * *', { lastSlot: T0 + 3_600_000 }), T0 + 3 * 3_600_000 + 10)).toBe(T0 + 3 * 3_600_000)
  })

  it('is the latest everyMs slot', () => {
    const every: ScheduleRecord = { name: 'e', collectionName: 'docs', snapshotPrefix: 'e', everyMs: 3_600_000, createdAt: T0 + 17 }
    expect(dueSlot(every, T0 + 17 + 10 * 3_600_000 + 5)).toBe(T0 + 17 + 10 * 3_600_000)
  })
})
