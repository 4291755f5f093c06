import { describe, expect, it } from 'vitest'
import { TypedEmitter, type SnapshotManagerEvents } from '../../src/events.js'
import { keys } from '../../src/meta/keys.js'
import { Transactor } from '../../src/meta/transaction.js'
import { ScheduleLoop } from '../../src/schedule/schedule-loop.js'
import { CLAIM_STALE_MS, ScheduleStore, type ScheduleRecord } from '../../src/schedule/schedule-store.js'
import type { CreateSnapshotRequest, SnapshotInfo } from '../../src/snapshot/snapshot-types.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { Clock } from '../snapshot/env.js'

const HOUR = 3_600_000
const T0 = Date.UTC(2026, 11, 4, 0, 0, 0)

/** One process's schedule loop over the shared `data`, with a `create` the test controls. */
async function processOver(data: Map<string, string>, clock: Clock, create: (request: CreateSnapshotRequest) => Promise<SnapshotInfo>, renewClaimMs?: number) {
  const meta = new MapMetaStore({ data })
  await meta.open()
  const schedules = new ScheduleStore({ meta, transactor: new Transactor(meta), now: clock.now })
  const events = new TypedEmitter<SnapshotManagerEvents>()
  const errors: Error[] = []
  events.on('loopError', (err) => errors.push(err))
  const loop = new ScheduleLoop({
    schedules,
    events,
    now: clock.now,
    create,
    find: async () => undefined,
    prune: async () => ({ dropped: [], failed: [], kept: [], reclaimedBytes: 0 }) as never,
    intervalMs: 0,
    renewClaimMs,
  })
  return { meta, schedules, loop, errors }
}

const record = async (meta: MapMetaStore, name: string): Promise<ScheduleRecord> => JSON.parse((await meta.get(keys.schedule(name)))!) as ScheduleRecord
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A run under way renews its claim, so a run longer than CLAIM_STALE_MS is not taken for a dead one and run again. */
describe('schedule claim renewal', () => {
  it('a run longer than the stale delay keeps its claim: another process does not run the slot again; the renewals end with the run', async () => {
    const clock = new Clock()
    clock.t = T0
    clock.frozen = true
    const data = new Map<string, string>()
    let release: () => void = () => undefined
    let reached: () => void = () => undefined
    const inCreate = new Promise<void>((resolve) => (reached = resolve))
    const a = await processOver(data, clock, async (request) => {
      reached()
      await new Promise<void>((resolve) => (release = resolve))
      return { name: request.snapshotName } as SnapshotInfo
    }, 5)
    const createdByB: string[] = []
    const b = await processOver(data, clock, async (request) => {
      createdByB.push(request.snapshotName)
      return { name: request.snapshotName } as SnapshotInfo
    })
    await a.schedules.put({ name: 'hourly', collectionName: 'docs', everyMs: HOUR }, async () => true)
    let renewals = 0
    const renew = a.schedules.renew.bind(a.schedules)
    a.schedules.renew = (...args) => {
      renewals++
      return renew(...args)
    }

    clock.t = T0 + HOUR
    const running = a.loop.runDue()
    await inCreate
    expect((await record(a.meta, 'hourly')).runningSince).toBe(T0 + HOUR)
    // The run is still creating its snapshot 10 minutes (and more) after its claim.
    clock.t += CLAIM_STALE_MS
    // A renewal comes within a few 5 ms ticks (allow for a loaded machine).
    for (let waited = 0; waited < 2_000 && (await record(a.meta, 'hourly')).runningSince !== clock.t; waited += 10) await sleep(10)
    expect((await record(a.meta, 'hourly')).runningSince).toBe(clock.t)
    clock.t += 1
    expect(await b.loop.runDue()).toEqual([])
    expect(createdByB).toEqual([])

    release()
    expect(await running).toEqual([{ schedule: 'hourly', snapshotName: 'hourly-20261204-010000', created: true, pruned: [] }])
    expect(await record(a.meta, 'hourly')).not.toHaveProperty('runningSince')
    // No renewal after the run (its timer stopped), and the finished claim stays finished.
    expect(renewals).toBeGreaterThan(0)
    const renewedDuringRun = renewals
    clock.t += 1
    await sleep(30)
    expect(renewals).toBe(renewedDuringRun)
    expect(await record(a.meta, 'hourly')).toMatchObject({ lastSnapshot: 'hourly-20261204-010000', lastSlot: T0 + HOUR })
    expect(await record(a.meta, 'hourly')).not.toHaveProperty('runningSince')
    expect(a.errors).toEqual([])
  })
})
