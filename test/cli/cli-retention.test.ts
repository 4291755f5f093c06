import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FsObjectStore, LevelMetaStore } from '../../src/index.js'
import type { PruneReport, ScheduleInfo, ScheduleRunResult, SnapshotInfo } from '../../src/index.js'
import { flushedSegment, openManager, seedCollection } from '../snapshot/env.js'
import { ensureBuilt, json, vecsnap } from './helpers.js'

/** `vecsnap prune` and `vecsnap schedules` (built binary, --data), text and --json. */

let dir: string

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'vecsnap-cli-ret-'))
  const objects = new FsObjectStore({ root: join(dir, 'objects'), fsync: false })
  const manager = await openManager(new LevelMetaStore({ location: join(dir, 'meta') }), objects)
  const coll = await seedCollection(manager, 'docs')
  await flushedSegment(manager, objects, coll, { numRows: 10 })
  await manager.close()
}, 180_000)

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

describe('vecsnap prune and schedules', { timeout: 90_000 }, () => {
  it('prunes with restic-like flags: a table of kept (with reasons) and dropped, --dry-run, --json', async () => {
    for (const name of ['s1', 's2', 's3', 's4']) expect((await vecsnap(['--data', dir, 'create', 'docs', name])).code).toBe(0)
    expect((await vecsnap(['--data', dir, 'hold', 's1', 'legal'])).code).toBe(0)

    const dry = await json<PruneReport>(dir, 'prune', '--keep-last', '2', '--dry-run')
    expect(dry.dryRun).toBe(true)
    expect(dry.kept).toEqual([
      { name: 's4', collectionName: 'docs', reasons: ['last 2'] },
      { name: 's3', collectionName: 'docs', reasons: ['last 2'] },
      { name: 's1', collectionName: 'docs', reasons: ['held: legal'] },
    ])
    expect(dry.dropped.map((d) => d.name)).toEqual(['s2'])
    expect((await json<SnapshotInfo[]>(dir, 'snapshots')).map((s) => s.name)).toEqual(['s1', 's2', 's3', 's4'])

    const text = await vecsnap(['--data', dir, 'prune', 'docs', '--keep-last', '2', '--keep-daily', '1'])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^keep 3 snapshots:$/m)
    expect(text.stdout).toMatch(/^s4\s+docs\s+last 2, daily \d{4}-\d{2}-\d{2}$/m)
    expect(text.stdout).toMatch(/^s1\s+docs\s+held: legal$/m)
    expect(text.stdout).toMatch(/^dropped 1 snapshots:$/m)
    expect(text.stdout).toMatch(/^s2\s+docs\s+0 B$/m)
    expect((await json<SnapshotInfo[]>(dir, 'snapshots')).map((s) => s.name)).toEqual(['s1', 's3', 's4'])
  })

  it('rejects a prune without a rule or with a bad value (exit 2, nothing dropped)', async () => {
    const before = await json<SnapshotInfo[]>(dir, 'snapshots')
    for (const args of [['prune'], ['prune', '--keep-last', '0'], ['prune', '--keep-within', 'soon'], ['prune', '--keep-daily', '1', '--time-zone', 'Nowhere/Land']]) {
      const r = await vecsnap(['--data', dir, ...args])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/^error INVALID_ARGUMENT: /)
    }
    expect(await json<SnapshotInfo[]>(dir, 'snapshots')).toEqual(before)
  })

  it('puts, lists, runs and deletes schedules', async () => {
    const put = await json<ScheduleInfo>(dir, 'schedules', 'put', 'secondly', 'docs', '--cron', '* * * * * *', '--keep-last', '1', '--snapshot-prefix', 'sec')
    expect(put).toMatchObject({ name: 'secondly', collectionName: 'docs', cron: '* * * * * *', snapshotPrefix: 'sec', retention: { keepLast: 1 } })
    const hourly = await json<ScheduleInfo>(dir, 'schedules', 'put', 'hourly', 'docs', '--every', '1h')
    expect(hourly.everyMs).toBe(3_600_000)
    const listed = await json<ScheduleInfo[]>(dir, 'schedules')
    expect(listed.map((s) => s.name)).toEqual(['hourly', 'secondly'])
    const text = await vecsnap(['--data', dir, 'schedules', 'list'])
    expect(text.stdout).toMatch(/^hourly\s+docs\s+every 1h\s+-/m)
    expect(text.stdout).toMatch(/^secondly\s+docs\s+cron \* \* \* \* \* \*\s+last 1/m)

    await new Promise((r) => setTimeout(r, 1_100))
    const runs = await json<ScheduleRunResult[]>(dir, 'schedules', 'run')
    expect(runs).toHaveLength(1)
    expect(runs[0]).toMatchObject({ schedule: 'secondly', created: true, pruned: [] })
    expect(runs[0].snapshotName).toMatch(/^sec-\d{8}-\d{6}$/)
    const snapshots = await json<SnapshotInfo[]>(dir, 'snapshots')
    expect(snapshots.find((s) => s.name === runs[0].snapshotName)?.schedule).toBe('secondly')
    expect((await json<ScheduleInfo[]>(dir, 'schedules')).find((s) => s.name === 'secondly')?.lastSnapshot).toBe(runs[0].snapshotName)

    expect((await vecsnap(['--data', dir, 'schedules', 'put', 'bad', 'docs', '--every', '1h', '--cron', '* * * * *'])).code).not.toBe(0)
    expect((await vecsnap(['--data', dir, 'schedules', 'put', 'bad', 'nope', '--every', '1h'])).stderr).toMatch(/^error NOT_FOUND: /)
    expect((await vecsnap(['--data', dir, 'schedules', 'delete', 'secondly'])).stdout).toMatch(/deleted schedule secondly/)
    expect((await json<ScheduleInfo[]>(dir, 'schedules')).map((s) => s.name)).toEqual(['hourly'])
  })
})
