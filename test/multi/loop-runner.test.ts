import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ManualLeadership } from '../helpers/manual-leadership.js'
import { keys } from '../../src/meta/keys.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { prefixRange, type MetaStore } from '../../src/meta/meta-store.js'
import type { SnapshotRecord } from '../../src/snapshot/snapshot-record.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import type { SnapshotManagerOptions } from '../../src/options.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { overrideObjects } from '../helpers/override-objects.js'

/**
 * Several managers over one store in one process, with leaderships the test controls:
 * what the loop runner does on election and demotion, and what a manager that does not
 * run the loops still serves.
 */

/** Knobs of a {@link controlled} store. */
interface Controls {
  /** Each copy waits this long first. */
  delayMs: number
  /** Puts of snapshot objects wait for `release()`. */
  holdSnapshots: boolean
  /** Lets the held puts go on. */
  release(): void
}

/** An ObjectStore whose copies wait `delayMs` and whose snapshot-object puts wait for `release()`. */
function controlled(objects: ObjectStore): { objects: ObjectStore; controls: Controls } {
  let waiting: (() => void)[] = []
  const controls: Controls = {
    delayMs: 0,
    holdSnapshots: false,
    release() {
      for (const w of waiting) w()
      waiting = []
    },
  }
  const wrapped = overrideObjects(objects, {
    async copy(...args: Parameters<ObjectStore['copy']>) {
      if (controls.delayMs > 0) await new Promise((r) => setTimeout(r, controls.delayMs))
      return objects.copy(...args)
    },
    async put(...args: Parameters<ObjectStore['put']>) {
      if (controls.holdSnapshots && args[0].startsWith('snapshots/')) await new Promise<void>((r) => waiting.push(r))
      return objects.put(...args)
    },
  })
  return { objects: wrapped, controls }
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function stores(): Promise<{ meta: MetaStore; objects: ObjectStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'vecsnap-runner-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return { meta: new MemoryMetaStore(), objects: new FsObjectStore({ root: join(dir, 'objects') }) }
}

async function manager(options: SnapshotManagerOptions): Promise<SnapshotManager> {
  const m = new SnapshotManager({ checkIntervalMs: 10, gcIntervalMs: 0, ...options })
  cleanups.push(() => m.close())
  const events: string[] = []
  ;(m as unknown as { log: string[] }).log = events
  m.on('leadershipChanged', (s) => events.push(s.leader ? 'leader' : `follower:${s.reason}`))
  m.on('restoreStarted', () => events.push('restoreStarted'))
  m.on('restoreFinished', (j) => events.push(`restoreFinished:${j.state}`))
  m.on('loopError', (err) => events.push(`loopError:${err.message}`))
  await m.open()
  return m
}

const log = (m: SnapshotManager): string[] => (m as unknown as { log: string[] }).log

async function seed(m: SnapshotManager, objects: ObjectStore, name: string, segments: number): Promise<void> {
  const c = await m.catalog.createCollection({ name, schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }] } })
  for (let i = 0; i < segments; i++) {
    const seg = await m.catalog.allocSegment({ collection: name })
    const files = []
    for (let logId = 1; logId <= 2; logId++) {
      const key = m.catalog.layout.insertLog({ collectionId: c.id, partitionId: seg.partitionId, segmentId: seg.id, fieldId: 100, logId })
      await objects.put(key, new TextEncoder().encode(`${key}`))
      files.push({ key, size: key.length, logId })
    }
    await m.catalog.flushSegment(seg.id, { numRows: 3, binlogs: [{ fieldId: 100, files }] })
  }
}

async function snapshotRecords(meta: MetaStore): Promise<SnapshotRecord[]> {
  const out: SnapshotRecord[] = []
  for await (const [, v] of meta.iterate(prefixRange(keys.snapshotPrefix))) out.push(JSON.parse(v) as SnapshotRecord)
  return out
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('loop runner', () => {
  it('on a single machine the manager leads from open() to close()', async () => {
    const { meta, objects } = await stores()
    const m = new SnapshotManager({ meta, objects, gcIntervalMs: 0 })
    const events: unknown[] = []
    m.on('leadershipChanged', (s) => events.push(s))
    await m.open()
    expect(events).toEqual([{ leader: true }])
    await m.close()
    expect(events).toEqual([{ leader: true }, { leader: false, reason: 'resigned' }])
  })

  it('a manager that does not run the loops serves restores (run by the runner), cancels and GC', async () => {
    const { meta, objects: raw } = await stores()
    const { objects, controls } = controlled(raw)
    const runner = await manager({ meta, objects })
    const follower = await manager({ meta, objects: raw, leadership: new ManualLeadership() })
    expect(log(runner)).toEqual(['leader'])
    expect(log(follower)).toEqual([])
    await seed(follower, raw, 'docs', 6)
    await follower.createSnapshot({ collectionName: 'docs', snapshotName: 'snap' })

    const jobId = await follower.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'copy' })
    const job = await follower.waitForRestore(jobId)
    expect(job).toMatchObject({ state: 'completed', copiedSegments: 6 })
    expect(await follower.getRestoreState(jobId)).toMatchObject({ state: 'completed' })
    expect((await follower.listRestoreJobs()).map((j) => j.jobId)).toEqual([jobId])
    expect(log(follower)).toEqual(['restoreStarted'])
    expect(log(runner)).toEqual(['leader', 'restoreFinished:completed'])

    // A slow job: the follower cancels it; the runner aborts and rolls it back.
    controls.delayMs = 100
    const slow = await follower.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'cancelled' })
    await until(async () => ((await follower.getRestoreState(slow)).state === 'in_progress' ? true : undefined))
    await follower.cancelRestore(slow)
    expect(await follower.getRestoreState(slow)).toMatchObject({ state: 'cancelled' })
    await expect(follower.catalog.getCollection('cancelled')).rejects.toMatchObject({ code: 'NOT_FOUND' })
    await expect(follower.waitForRestore(slow)).rejects.toMatchObject({ code: 'RESTORE_FAILED' })
    expect(log(runner)).toContain('restoreFinished:cancelled')

    expect(await follower.runGc({ dryRun: true })).toMatchObject({ dryRun: true })
    expect(log(runner).filter((e) => e.startsWith('loopError'))).toEqual([])
  })

  it('recovery leaves a live manager’s pending snapshot alone and removes it once that manager is gone', async () => {
    const { meta, objects: raw } = await stores()
    const leadership = new ManualLeadership()
    const runner = await manager({ meta, objects: raw, leadership })
    await leadership.elect()
    expect(log(runner)).toEqual(['leader'])
    const { objects: held, controls } = controlled(raw)
    const creator = await manager({ meta, objects: held, leadership: new ManualLeadership() })
    await seed(creator, raw, 'docs', 2)
    controls.holdSnapshots = true
    const creating = creator.createSnapshot({ collectionName: 'docs', snapshotName: 'slow' }).then(
      () => 'created',
      (err: { code: string }) => err.code,
    )
    const pending = await until(async () => (await snapshotRecords(meta)).find((r) => r.state === 'pending'))
    expect(pending.owner).toEqual(expect.any(String))

    // The creator is a live candidate: an election and the periodic sweeps keep its record.
    leadership.alive.add(pending.owner!)
    await leadership.demote('lease-lost')
    await leadership.elect()
    await new Promise((r) => setTimeout(r, 400)) // > 2 sweeps (15 × checkIntervalMs)
    expect((await snapshotRecords(meta)).map((r) => r.state)).toEqual(['pending'])

    // The creator's lease is gone: the next sweep removes the record; the create fails cleanly.
    leadership.alive.delete(pending.owner!)
    await until(async () => ((await snapshotRecords(meta)).length === 0 ? true : undefined))
    controls.holdSnapshots = false
    controls.release()
    expect(await creating).toBe('FAILED_PRECONDITION')
    expect(await runner.listSnapshots()).toEqual([])
    expect(log(runner)).toEqual(['leader', 'follower:lease-lost', 'leader'])
  })

  it('demotion stops the loops mid-restore; re-election resumes the job', async () => {
    const { meta, objects: raw } = await stores()
    const { objects, controls } = controlled(raw)
    const leadership = new ManualLeadership()
    const runner = await manager({ meta, objects, leadership, restoreConcurrency: 1, maxSegmentsPerCopyTask: 1 })
    await seed(runner, raw, 'docs', 8)
    await runner.createSnapshot({ collectionName: 'docs', snapshotName: 'snap' })
    controls.delayMs = 30
    const jobId = await runner.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: 'copy' })
    // Not elected yet: nothing runs the job.
    await new Promise((r) => setTimeout(r, 100))
    expect(await runner.getRestoreState(jobId)).toMatchObject({ state: 'pending' })
    await leadership.elect()
    await until(async () => ((await runner.getRestoreState(jobId)).copiedSegments >= 2 ? true : undefined))
    await leadership.demote('lease-expiring')
    const stopped = await runner.getRestoreState(jobId)
    expect(stopped.state).toBe('in_progress')
    await new Promise((r) => setTimeout(r, 300))
    expect((await runner.getRestoreState(jobId)).copiedSegments).toBe(stopped.copiedSegments)
    await leadership.elect()
    expect(await runner.waitForRestore(jobId)).toMatchObject({ state: 'completed', copiedSegments: 8 })
    expect(log(runner)).toEqual(['restoreStarted', 'leader', 'follower:lease-expiring', 'leader', 'restoreFinished:completed'])
  })
})
