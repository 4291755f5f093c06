import { afterEach, describe, expect, it } from 'vitest'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import type { SnapshotManagerOptions } from '../../src/options.js'
import type { ScheduleRunEvent } from '../../src/schedule/schedule-types.js'
import { CLAIM_STALE_MS } from '../../src/schedule/schedule-store.js'
import { keys } from '../../src/meta/keys.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { CrashPlan, crashingMetaStore, crashingObjectStore } from '../helpers/crash-store.js'
import { MemoryObjects } from '../helpers/memory-objects.js'
import { ManualLeadership } from '../helpers/manual-leadership.js'
import { Clock, code, flushedSegment, seedCollection } from '../snapshot/env.js'
import { overrideObjects } from '../helpers/override-objects.js'

const HOUR = 3_600_000
const T0 = Date.UTC(2026, 11, 4, 0, 0, 0)

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** A manager whose schedule loop looks every 5 ms, on a frozen clock the test moves. */
async function open(clock: Clock, options: Partial<SnapshotManagerOptions> & { meta?: SnapshotManagerOptions['meta']; objects?: SnapshotManagerOptions['objects'] } = {}): Promise<SnapshotManager> {
  const m = new SnapshotManager({ meta: new MapMetaStore(), objects: new MemoryObjects(), gcIntervalMs: 0, scheduleIntervalMs: 5, now: clock.now, ...options })
  cleanups.push(() => m.close())
  await m.open()
  return m
}

/** Resolves the next `scheduleRun` of `m`. */
function nextRun(m: SnapshotManager): Promise<ScheduleRunEvent> {
  return new Promise((resolve) => m.once('scheduleRun', resolve))
}

/** Lets the schedule loop look several times. */
const ticks = (n = 6): Promise<void> => new Promise((r) => setTimeout(r, n * 5 + 20))

function frozen(t = T0): Clock {
  const clock = new Clock()
  clock.t = t
  clock.frozen = true
  return clock
}

describe('schedules', () => {
  it('runs every slot, names snapshots by slot, and prunes only its own snapshots', async () => {
    const clock = frozen()
    const objects = new MemoryObjects()
    const m = await open(clock, { objects })
    const coll = await seedCollection(m, 'docs')
    await flushedSegment(m, objects, coll, { numRows: 10 })
    await m.createSnapshot({ collectionName: 'docs', snapshotName: 'manual' })
    const info = await m.putSchedule({ name: 'hourly', collectionName: 'docs', everyMs: HOUR, retention: { keepLast: 2 } })
    expect(info).toMatchObject({ name: 'hourly', snapshotPrefix: 'hourly', createdAt: T0, nextRunAt: T0 + HOUR })
    await ticks()
    expect((await m.listSnapshots()).map((s) => s.name)).toEqual(['manual'])

    const runs: ScheduleRunEvent[] = []
    m.on('scheduleRun', (r) => runs.push(r))
    for (let h = 1; h <= 4; h++) {
      const run = nextRun(m)
      clock.t = T0 + h * HOUR + 1_234
      await run
    }
    expect(runs.map((r) => r.snapshotName)).toEqual(['hourly-20261204-010000', 'hourly-20261204-020000', 'hourly-20261204-030000', 'hourly-20261204-040000'])
    expect(runs.map((r) => r.pruned)).toEqual([[], [], ['hourly-20261204-010000'], ['hourly-20261204-020000']])
    const snapshots = await m.listSnapshots()
    expect(snapshots.map((s) => [s.name, s.schedule])).toEqual([
      ['manual', undefined],
      ['hourly-20261204-030000', 'hourly'],
      ['hourly-20261204-040000', 'hourly'],
    ])
    const [listed] = await m.listSchedules()
    expect(listed).toMatchObject({ name: 'hourly', lastRunAt: T0 + 4 * HOUR + 1_234, lastSnapshot: 'hourly-20261204-040000', nextRunAt: T0 + 5 * HOUR })
    expect(listed.lastError).toBeUndefined()
  })

  it('after downtime runs an overdue schedule once, for the latest slot', async () => {
    const clock = frozen()
    const objects = new MemoryObjects()
    const meta = new MapMetaStore()
    let m = await open(clock, { meta, objects })
    const coll = await seedCollection(m, 'docs')
    await flushedSegment(m, objects, coll, { numRows: 10 })
    await m.putSchedule({ name: 'hourly', collectionName: 'docs', everyMs: HOUR })
    await m.close()
    clock.t = T0 + 10 * HOUR + 5 // ten slots missed while down
    const runs: ScheduleRunEvent[] = []
    m = new SnapshotManager({ meta, objects, gcIntervalMs: 0, scheduleIntervalMs: 5, now: clock.now })
    cleanups.push(() => m.close())
    m.on('scheduleRun', (r) => runs.push(r))
    await m.open()
    await ticks(10)
    expect(runs.map((r) => r.snapshotName)).toEqual(['hourly-20261204-100000'])
    expect((await m.listSchedules())[0].nextRunAt).toBe(T0 + 11 * HOUR)
  })

  it('computes cron slots in the time zone given', async () => {
    const clock = frozen()
    const objects = new MemoryObjects()
    const m = await open(clock, { objects })
    const coll = await seedCollection(m, 'docs')
    await flushedSegment(m, objects, coll, { numRows: 10 })
    // 03:00 in Paris is 02:00 UTC in December.
    const info = await m.putSchedule({ name: 'nightly', collectionName: 'docs', cron: '0 3 * * *', timeZone: 'Europe/Paris', snapshotPrefix: 'night' })
    expect(info.nextRunAt).toBe(Date.UTC(2026, 11, 4, 2))
    const run = nextRun(m)
    clock.t = Date.UTC(2026, 11, 4, 2, 0, 3)
    expect((await run).snapshotName).toBe('night-20261204-020000')
    expect((await m.listSchedules())[0].nextRunAt).toBe(Date.UTC(2026, 11, 5, 2))
  })

  it('records a failed run (lastError, scheduleError) and runs the next slot as usual', async () => {
    const clock = frozen()
    const objects = new MemoryObjects()
    const m = await open(clock, { objects })
    let coll = await seedCollection(m, 'docs')
    await flushedSegment(m, objects, coll, { numRows: 10 })
    await m.putSchedule({ name: 'hourly', collectionName: 'docs', everyMs: HOUR })
    await m.catalog.dropCollection('docs')
    const failed = new Promise<[Error, unknown]>((resolve) => m.once('scheduleError', (err, ctx) => resolve([err, ctx])))
    clock.t = T0 + HOUR
    const [err, ctx] = await failed
    expect(err).toEqual(code('NOT_FOUND'))
    expect(ctx).toEqual({ schedule: 'hourly', snapshotName: 'hourly-20261204-010000', phase: 'create' })
    await ticks()
    expect((await m.listSchedules())[0]).toMatchObject({ lastRunAt: T0 + HOUR, lastError: { code: 'NOT_FOUND', at: T0 + HOUR }, nextRunAt: T0 + 2 * HOUR })
    expect((await m.listSchedules())[0].lastSnapshot).toBeUndefined()

    coll = await seedCollection(m, 'docs')
    await flushedSegment(m, objects, coll, { numRows: 10 })
    const run = nextRun(m)
    clock.t = T0 + 2 * HOUR
    expect((await run).snapshotName).toBe('hourly-20261204-020000')
    const [after] = await m.listSchedules()
    expect(after.lastError).toBeUndefined()
    expect(after.lastSnapshot).toBe('hourly-20261204-020000')
  })

  it('runs on the elected loop runner only', async () => {
    const clock = frozen()
    const data = new Map<string, string>()
    const objects = new MemoryObjects()
    const [la, lb] = [new ManualLeadership(), new ManualLeadership()]
    const a = await open(clock, { meta: new MapMetaStore({ data }), objects, leadership: la })
    const b = await open(clock, { meta: new MapMetaStore({ data }), objects, leadership: lb })
    const coll = await seedCollection(a, 'docs')
    await flushedSegment(a, objects, coll, { numRows: 10 })
    await b.putSchedule({ name: 'hourly', collectionName: 'docs', everyMs: HOUR })
    clock.t = T0 + HOUR
    await ticks()
    expect(await a.listSnapshots()).toEqual([]) // nobody leads: nothing runs
    const ran: string[] = []
    a.on('scheduleRun', () => ran.push('a'))
    b.on('scheduleRun', () => ran.push('b'))
    const run = nextRun(b)
    await lb.elect()
    await run
    await ticks()
    expect(ran).toEqual(['b'])
    await lb.demote('lease-lost')
    await la.elect()
    const next = nextRun(a)
    clock.t = T0 + 2 * HOUR
    await next
    await ticks()
    expect(ran).toEqual(['b', 'a'])
  })

  it('runs a slot once even when two managers on a shared conditional store both run the loops', async () => {
    const clock = frozen()
    const data = new Map<string, string>()
    const objects = new MemoryObjects()
    // No election: each manager leads (LocalLeadership), the worst case the slot claim guards.
    const a = await open(clock, { meta: new MapMetaStore({ data }), objects })
    const b = await open(clock, { meta: new MapMetaStore({ data }), objects })
    const coll = await seedCollection(a, 'docs')
    await flushedSegment(a, objects, coll, { numRows: 10 })
    await a.putSchedule({ name: 'hourly', collectionName: 'docs', everyMs: HOUR })
    const ran: string[] = []
    const errors: string[] = []
    for (const [name, m] of [['a', a], ['b', b]] as const) {
      m.on('scheduleRun', (r) => ran.push(`${name}:${r.snapshotName}`))
      m.on('scheduleError', (err) => errors.push(`${name}:${err.message}`))
    }
    for (let h = 1; h <= 5; h++) {
      clock.t = T0 + h * HOUR
      await ticks(8)
    }
    expect(errors).toEqual([])
    expect(ran).toHaveLength(5)
    expect((await a.listSnapshots()).map((s) => s.name)).toEqual([1, 2, 3, 4, 5].map((h) => `hourly-20261204-0${h}0000`))
  })

  it('with scheduleIntervalMs 0 runs nothing on its own; runDueSchedules runs what is due, once', async () => {
    const clock = frozen()
    const objects = new MemoryObjects()
    const m = await open(clock, { objects, scheduleIntervalMs: 0 })
    const coll = await seedCollection(m, 'docs')
    await flushedSegment(m, objects, coll, { numRows: 10 })
    await m.putSchedule({ name: 'hourly', collectionName: 'docs', everyMs: HOUR, retention: { keepLast: 1 } })
    clock.t = T0 + HOUR
    await ticks()
    expect(await m.listSnapshots()).toEqual([])
    expect(await m.runDueSchedules()).toEqual([{ schedule: 'hourly', snapshotName: 'hourly-20261204-010000', created: true, pruned: [] }])
    expect(await m.runDueSchedules()).toEqual([])
    clock.t = T0 + 2 * HOUR
    expect(await m.runDueSchedules()).toEqual([{ schedule: 'hourly', snapshotName: 'hourly-20261204-020000', created: true, pruned: ['hourly-20261204-010000'] }])
    await m.catalog.dropCollection('docs')
    clock.t = T0 + 3 * HOUR
    expect(await m.runDueSchedules()).toEqual([
      { schedule: 'hourly', snapshotName: 'hourly-20261204-030000', created: false, pruned: [], error: { code: 'NOT_FOUND', message: 'collection not found: docs', at: T0 + 3 * HOUR } },
    ])
  })

  it('gives back the slot of a run stopped by close(): the next manager runs it', async () => {
    const clock = frozen()
    const meta = new MapMetaStore()
    const inner = new MemoryObjects()
    let hold: (() => void) | undefined
    let held: () => void = () => undefined
    const reached = new Promise<void>((resolve) => (held = resolve))
    let gate = true
    const objects = overrideObjects(inner, {
      put: async (...args: Parameters<MemoryObjects['put']>) => {
        if (gate && args[0].startsWith('snapshots/')) {
          gate = false
          held()
          await new Promise<void>((resolve) => (hold = resolve))
        }
        return inner.put(...args)
      },
    })
    const m = await open(clock, { meta, objects })
    const coll = await seedCollection(m, 'docs')
    await flushedSegment(m, inner, coll, { numRows: 10 })
    await m.putSchedule({ name: 'hourly', collectionName: 'docs', everyMs: HOUR })
    clock.t = T0 + HOUR
    await reached // the run is writing its snapshot
    const closing = m.close()
    hold!()
    await closing
    const again = await open(clock, { meta, objects: inner, scheduleIntervalMs: 0 })
    expect((await again.listSchedules())[0].lastRunAt).toBeUndefined()
    expect(await again.runDueSchedules()).toEqual([{ schedule: 'hourly', snapshotName: 'hourly-20261204-010000', created: true, pruned: [] }])
  })

  it('runs again the slot of a run whose process died after claiming it, once the claim is stale, and only once', async () => {
    const clock = frozen()
    const meta = new MapMetaStore()
    const objects = new MemoryObjects()
    const a = await open(clock, { meta, objects, scheduleIntervalMs: 0 })
    const b = await open(clock, { meta, objects, scheduleIntervalMs: 0 })
    const coll = await seedCollection(a, 'docs')
    await flushedSegment(a, objects, coll, { numRows: 10 })
    await a.putSchedule({ name: 'daily', collectionName: 'docs', everyMs: 24 * HOUR })
    // What a process that claimed the 00:00 slot and died before creating anything leaves.
    clock.t = T0 + 24 * HOUR
    const record = JSON.parse((await meta.get(keys.schedule('daily')))!) as Record<string, unknown>
    await meta.batch([{ type: 'put', key: keys.schedule('daily'), value: JSON.stringify({ ...record, lastSlot: T0 + 24 * HOUR, lastRunAt: clock.t, runningSince: clock.t }) }])

    clock.t += CLAIM_STALE_MS - 1
    expect(await a.runDueSchedules()).toEqual([])
    expect((await a.listSchedules())[0].nextRunAt).toBe(T0 + 48 * HOUR)
    clock.t += 1
    expect((await a.listSchedules())[0].nextRunAt).toBe(T0 + 24 * HOUR)
    // Two runners retry it at once: one run.
    const runs = await Promise.all([a.runDueSchedules(), b.runDueSchedules()])
    expect(runs.flat()).toEqual([{ schedule: 'daily', snapshotName: 'daily-20261205-000000', created: true, pruned: [] }])
    expect((await a.listSnapshots()).map((s) => s.name)).toEqual(['daily-20261205-000000'])
    const [after] = await a.listSchedules()
    expect(after).toMatchObject({ lastSnapshot: 'daily-20261205-000000', nextRunAt: T0 + 48 * HOUR })
    expect(after).not.toHaveProperty('runningSince')
    clock.t += 2 * CLAIM_STALE_MS
    expect(await a.runDueSchedules()).toEqual([])
  })

  it('a retried run adopts the snapshot its crashed run committed (tagged for the schedule) and goes on to retention', async () => {
    const clock = frozen()
    const data = new Map<string, string>()
    const objects = new MemoryObjects()
    const plan = new CrashPlan()
    // Process a: its writes start failing, as if it died, once its run has committed the snapshot.
    const a = await open(clock, { meta: crashingMetaStore(new MapMetaStore({ data }), plan), objects: crashingObjectStore(objects, plan), scheduleIntervalMs: 0 })
    const coll = await seedCollection(a, 'docs')
    await flushedSegment(a, objects, coll, { numRows: 10 })
    await a.putSchedule({ name: 'hourly', collectionName: 'docs', everyMs: HOUR, retention: { keepLast: 1 } })
    clock.t = T0 + HOUR
    expect(await a.runDueSchedules()).toEqual([{ schedule: 'hourly', snapshotName: 'hourly-20261204-010000', created: true, pruned: [] }])
    clock.t = T0 + 2 * HOUR
    a.once('snapshotCreated', () => plan.armIn(1))
    const [crashed] = await a.runDueSchedules()
    expect(crashed).toMatchObject({ schedule: 'hourly', snapshotName: 'hourly-20261204-020000', error: { message: expect.stringMatching(/injected crash/) } })
    expect(plan.crashed).toBe(true)

    // Process b finds the claim unfinished, the new snapshot committed and the old one not pruned.
    const b = await open(clock, { meta: new MapMetaStore({ data }), objects, scheduleIntervalMs: 0 })
    const committed = () => b.listSnapshots().then((all) => all.map((s) => [s.name, s.schedule]))
    expect(await committed()).toEqual([
      ['hourly-20261204-010000', 'hourly'],
      ['hourly-20261204-020000', 'hourly'],
    ])
    clock.t += CLAIM_STALE_MS - 1
    expect(await b.runDueSchedules()).toEqual([])
    clock.t += 1
    const runs: ScheduleRunEvent[] = []
    const errors: Error[] = []
    b.on('scheduleRun', (r) => runs.push(r))
    b.on('scheduleError', (err) => errors.push(err))
    expect(await b.runDueSchedules()).toEqual([{ schedule: 'hourly', snapshotName: 'hourly-20261204-020000', created: true, pruned: ['hourly-20261204-010000'] }])
    expect(runs).toEqual([{ schedule: 'hourly', snapshotName: 'hourly-20261204-020000', pruned: ['hourly-20261204-010000'] }])
    expect(errors).toEqual([])
    expect(await committed()).toEqual([['hourly-20261204-020000', 'hourly']])
    const [after] = await b.listSchedules()
    expect(after).toMatchObject({ lastSnapshot: 'hourly-20261204-020000', nextRunAt: T0 + 3 * HOUR })
    expect(after.lastError).toBeUndefined()
    expect(after).not.toHaveProperty('runningSince')
    clock.t += 2 * CLAIM_STALE_MS
    expect(await b.runDueSchedules()).toEqual([])
    plan.disarm()
  })

  it('a retried run whose slot name another snapshot took reports ALREADY_EXISTS and ends the claim', async () => {
    const clock = frozen()
    const meta = new MapMetaStore()
    const objects = new MemoryObjects()
    const m = await open(clock, { meta, objects, scheduleIntervalMs: 0 })
    const coll = await seedCollection(m, 'docs')
    await flushedSegment(m, objects, coll, { numRows: 10 })
    await m.putSchedule({ name: 'hourly', collectionName: 'docs', everyMs: HOUR, retention: { keepLast: 1 } })
    clock.t = T0 + HOUR
    expect(await m.runDueSchedules()).toHaveLength(1)
    clock.t = T0 + 2 * HOUR
    expect(await m.runDueSchedules()).toHaveLength(1)
    // The 03:00 run committed its snapshot and died before its retention and its record.
    clock.t = T0 + 3 * HOUR
    const record = JSON.parse((await meta.get(keys.schedule('hourly')))!) as Record<string, unknown>
    await meta.batch([{ type: 'put', key: keys.schedule('hourly'), value: JSON.stringify({ ...record, lastSlot: T0 + 3 * HOUR, lastRunAt: clock.t, runningSince: clock.t }) }])
    await m.createSnapshot({ collectionName: 'docs', snapshotName: 'hourly-20261204-030000' })
    clock.t += CLAIM_STALE_MS
    // Not tagged with the schedule (made by hand here): the retry reports the clash instead of adopting it.
    expect(await m.runDueSchedules()).toEqual([expect.objectContaining({ schedule: 'hourly', created: false, error: expect.objectContaining({ code: 'ALREADY_EXISTS' }) })])
    expect((await m.listSchedules())[0]).not.toHaveProperty('runningSince')
  })

  it('reports a schedule whose record cannot be written and runs the others', async () => {
    const clock = frozen()
    const objects = new MemoryObjects()
    let failA = false
    const meta = new MapMetaStore({
      gate: async (operations) => {
        if (failA && operations.some((o) => o.key === 'p/sched/a')) throw new Error('etcd is unhappy')
      },
    })
    const m = await open(clock, { meta, objects, scheduleIntervalMs: 0 })
    const coll = await seedCollection(m, 'docs')
    await flushedSegment(m, objects, coll, { numRows: 10 })
    await m.putSchedule({ name: 'a', collectionName: 'docs', everyMs: HOUR })
    await m.putSchedule({ name: 'b', collectionName: 'docs', everyMs: HOUR })
    failA = true
    clock.t = T0 + HOUR
    const runs = await m.runDueSchedules()
    expect(runs.map((r) => [r.schedule, r.created, r.error?.message])).toEqual([
      ['a', false, expect.stringMatching(/etcd is unhappy/)],
      ['b', true, undefined],
    ])
  })

  it('rejects unknown request fields (a typo must not change when it runs)', async () => {
    const clock = frozen()
    const m = await open(clock)
    await seedCollection(m, 'docs')
    await expect(m.putSchedule({ name: 'x', collectionName: 'docs', cron: '0 3 * * *', timezone: 'Europe/Paris' } as never)).rejects.toEqual(code('INVALID_ARGUMENT'))
    expect(await m.listSchedules()).toEqual([])
  })

  it('validates schedules (nothing stored on a bad one) and deletes them idempotently', async () => {
    const clock = frozen()
    const objects = new MemoryObjects()
    const m = await open(clock, { objects })
    await seedCollection(m, 'docs')
    const bad: [object, string][] = [
      [{ name: 'x', collectionName: 'docs' }, 'INVALID_ARGUMENT'], // neither everyMs nor cron
      [{ name: 'x', collectionName: 'docs', everyMs: HOUR, cron: '0 * * * *' }, 'INVALID_ARGUMENT'],
      [{ name: 'x', collectionName: 'docs', everyMs: 999 }, 'INVALID_ARGUMENT'],
      [{ name: 'x', collectionName: 'docs', cron: '61 * * * *' }, 'INVALID_ARGUMENT'],
      [{ name: 'x', collectionName: 'docs', cron: '0 0 31 2 *' }, 'INVALID_ARGUMENT'], // never fires
      [{ name: 'x', collectionName: 'docs', cron: '0 * * * *', timeZone: 'Mars/Base' }, 'INVALID_ARGUMENT'],
      [{ name: 'x', collectionName: 'docs', everyMs: HOUR, timeZone: 'UTC' }, 'INVALID_ARGUMENT'],
      [{ name: 'x', collectionName: 'docs', everyMs: HOUR, retention: {} }, 'INVALID_ARGUMENT'],
      [{ name: 'x', collectionName: 'docs', everyMs: HOUR, snapshotPrefix: 'a b' }, 'INVALID_ARGUMENT'],
      [{ name: 'x', collectionName: 'docs', everyMs: HOUR, snapshotPrefix: 'p'.repeat(240) }, 'INVALID_ARGUMENT'],
      [{ name: '../x', collectionName: 'docs', everyMs: HOUR }, 'INVALID_ARGUMENT'],
      [{ name: 'x', collectionName: 'nope', everyMs: HOUR }, 'NOT_FOUND'],
    ]
    for (const [request, c] of bad) await expect(m.putSchedule(request as never)).rejects.toEqual(code(c))
    await expect(m.putSchedule({ name: 'x', collectionName: 'docs', everyMs: '1h' as never })).rejects.toThrow(TypeError)
    await expect(m.putSchedule(null as never)).rejects.toThrow(TypeError)
    expect(await m.listSchedules()).toEqual([])

    await m.putSchedule({ name: 'x', collectionName: 'docs', everyMs: HOUR })
    clock.t += 10 * 60_000
    // Replacing keeps the timing's anchor when the timing is unchanged.
    expect((await m.putSchedule({ name: 'x', collectionName: 'docs', everyMs: HOUR, retention: { keepDaily: 7 } })).nextRunAt).toBe(T0 + HOUR)
    expect((await m.putSchedule({ name: 'x', collectionName: 'docs', everyMs: 2 * HOUR })).nextRunAt).toBe(T0 + 10 * 60_000 + 2 * HOUR)
    await m.deleteSchedule('x')
    await m.deleteSchedule('x')
    expect(await m.listSchedules()).toEqual([])
  })
})
