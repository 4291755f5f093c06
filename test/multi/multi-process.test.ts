import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startEtcd } from '../helpers/etcd.js'
import { startS3rver, type S3rverServer } from '../helpers/s3rver.js'
import type { WorkerConfig } from './fixtures/worker.js'
import { Worker, until } from './helpers.js'

/**
 * Two SnapshotManagers in separate processes on one real etcd (EtcdMetaStore, a unique
 * prefix per suite) and one shared object store (a directory, or s3rver): no update is
 * lost, one loop runner at a time, and a killed runner's restore is finished by the other.
 */

const etcd = await startEtcd()

interface SegmentLike {
  id: number
  state: string
  numRows: number
  binlogs: { fieldId: number; files: { key: string; size: number }[] }[]
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

/** Each segment's file digests, sorted; the list of those, sorted: equal iff the same files by content. */
async function contentOf(worker: Worker, segments: SegmentLike[]): Promise<string[]> {
  const keys = segments.flatMap((s) => s.binlogs.flatMap((b) => b.files.map((f) => f.key)))
  const digests = await worker.call<Record<string, string | null>>('digests', { keys })
  return segments
    .map((s) =>
      s.binlogs
        .flatMap((b) => b.files.map((f) => digests[f.key] ?? 'MISSING'))
        .sort()
        .join(','),
    )
    .sort()
}

if ('skip' in etcd) {
  console.warn(`multi-process tests skipped: ${etcd.skip}`)
  describe.skip(`two managers in two processes (skipped: ${etcd.skip})`, () => {
    it('needs etcd', () => undefined)
  })
} else {
  const { endpoint } = etcd
  let s3: S3rverServer | undefined
  const dirs: string[] = []
  afterAll(async () => {
    await s3?.stop()
    for (const d of dirs) await rm(d, { recursive: true, force: true })
    await etcd.stop()
  })

  const fsObjects = async (): Promise<WorkerConfig['objects']> => {
    const dir = await mkdtemp(join(tmpdir(), 'vecsnap-multi-'))
    dirs.push(dir)
    return { fs: join(dir, 'objects') }
  }
  const s3Objects = async (): Promise<WorkerConfig['objects']> => {
    s3 ??= await startS3rver()
    return { s3: { endpoint: s3.endpoint, bucket: s3.bucket, prefix: `multi-${randomUUID()}` } }
  }

  /**
   * Spawns two workers on one etcd prefix and object store; `a` opens first, so it runs
   * the loops. GC runs in the runner every `gcIntervalMs` with no drop grace.
   */
  async function pair(objects: WorkerConfig['objects'], gcIntervalMs: number): Promise<[Worker, Worker]> {
    const config: WorkerConfig = {
      etcd: endpoint,
      prefix: `multi/${randomUUID()}/`,
      objects,
      ttlSeconds: 2,
      manager: { checkIntervalMs: 100, gcIntervalMs, dropGraceMs: 0, restoreConcurrency: 4, maxSegmentsPerCopyTask: 5 },
    }
    const [a, b] = await Promise.all([Worker.spawn('A', config), Worker.spawn('B', config)])
    await a.call('open')
    await a.waitFor((e) => e.event === 'leadershipChanged' && e.data.leader === true, 5_000)
    await b.call('open')
    return [a, b]
  }

  // Starting a worker takes seconds (tsx): start every one at once.
  const backends = [
    { name: 'a shared directory', pair: fsObjects().then((o) => pair(o, 300)), initial: 12, extra: 8, failover: true },
    // s3rver answers a request in tens of milliseconds: a smaller workload, fewer GC passes.
    { name: 's3rver', pair: s3Objects().then((o) => pair(o, 2_000)), initial: 8, extra: 4, failover: false },
  ]
  for (const b of backends) b.pair.catch(() => undefined)

  describe.each(backends)('two processes on one etcd and $name', ({ pair: started, initial: initialCount, extra, failover }) => {
    let a: Worker
    let b: Worker

    beforeAll(async () => {
      ;[a, b] = await started
    })
    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()])
    })

    it('exactly one manager runs the loops', async () => {
      expect(a.leading).toBe(true)
      expect(await a.call('leader')).toBe(true)
      expect(await b.call('leader')).toBe(false)
      expect(b.events.filter((e) => e.event === 'leadershipChanged')).toEqual([])
    })

    it('10 concurrent same-name creates across both processes: exactly one wins', async () => {
      await a.call('createCollection', { name: 'dup_src' })
      await b.call('seed', { collection: 'dup_src', count: 3, files: 1, sizeBytes: 32, rows: 5 })
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).settle('createSnapshot', { collectionName: 'dup_src', snapshotName: 'dup' })),
      )
      const won = results.filter((r) => r.ok)
      expect(won).toHaveLength(1)
      expect(results.filter((r) => !r.ok).map((r) => (r as { error: { code: string } }).error.code)).toEqual(Array(9).fill('ALREADY_EXISTS'))
      const listed = (await b.call<{ name: string; rowCount: number }[]>('listSnapshots')).filter((s) => s.name === 'dup')
      expect(listed).toHaveLength(1)
      expect(listed[0].rowCount).toBe(15)
      expect(await a.call('verifySnapshot', { name: 'dup' })).toMatchObject({ ok: true })
    })

    it('concurrent creates, drops, restores and compactions lose no update', async () => {
      await a.call('createCollection', { name: 'docs' })
      const initial = await a.call<number[]>('seed', { collection: 'docs', count: initialCount, files: 2, sizeBytes: 64, rows: 10 })

      // Phase 1: both processes allocate IDs and write the catalog at once.
      const [idsA, idsB, ...made] = await Promise.all([
        a.call<number[]>('seed', { collection: 'docs', count: extra, files: 1, sizeBytes: 32, rows: 10 }),
        b.call<number[]>('seed', { collection: 'docs', count: extra, files: 1, sizeBytes: 32, rows: 10 }),
        a.settle('createCollection', { name: 'other_a' }),
        b.settle('createCollection', { name: 'other_b' }),
        a.settle('createCollection', { name: 'contested' }),
        b.settle('createCollection', { name: 'contested' }),
      ])
      const all = [...initial, ...idsA, ...idsB]
      expect(new Set(all).size).toBe(all.length)
      expect(made.slice(0, 2).filter((r) => !r.ok)).toEqual([])
      expect(made.slice(2).filter((r) => r.ok)).toHaveLength(1)
      let flushed = await b.call<SegmentLike[]>('listSegments', { collection: 'docs', states: ['flushed'] })
      expect(flushed.map((s) => s.id).sort((x, y) => x - y)).toEqual([...all].sort((x, y) => x - y))
      const totalRows = (initialCount + 2 * extra) * 10
      expect(sum(flushed.map((s) => s.numRows))).toBe(totalRows)
      // Files are immutable and their bytes a function of their key: remember every segment's content.
      const known = new Set(await contentOf(a, flushed))

      // Phase 2: compactions (two of them overlap) race snapshot creates in both processes,
      // while the runner's GC collects dropped segments with no grace.
      const [s0, s1, s2, s3, s4, s5, s6] = initial
      const phase2 = await Promise.all([
        a.settle('compact', { collection: 'docs', sources: [s0, s1] }),
        b.settle('compact', { collection: 'docs', sources: [s1, s2] }),
        a.settle('compact', { collection: 'docs', sources: [s3, s4] }),
        b.settle('compact', { collection: 'docs', sources: [s5, s6] }),
        ...['m1', 'm2', 'm3'].flatMap((n) => [
          a.settle('createSnapshot', { collectionName: 'docs', snapshotName: `${n}_a` }),
          b.settle('createSnapshot', { collectionName: 'docs', snapshotName: `${n}_b` }),
        ]),
      ])
      const [overlapA, overlapB, disjointA, disjointB] = phase2
      expect([overlapA.ok, overlapB.ok].filter(Boolean)).toHaveLength(1)
      const loser = overlapA.ok ? overlapB : overlapA
      expect(loser).toMatchObject({ ok: false, error: { code: 'FAILED_PRECONDITION' } })
      expect([disjointA, disjointB].filter((r) => !r.ok)).toEqual([])
      const snapshots = phase2.slice(4)
      expect(snapshots.filter((r) => !r.ok)).toEqual([])
      // Compactions keep the row count, so every snapshot, whenever it was taken, saw all rows.
      for (const r of snapshots) expect((r as { result: { rowCount: number } }).result.rowCount).toBe(totalRows)
      flushed = await a.call<SegmentLike[]>('listSegments', { collection: 'docs', states: ['flushed'] })
      expect(sum(flushed.map((s) => s.numRows))).toBe(totalRows)
      expect(flushed).toHaveLength(initialCount + 2 * extra - 6 + 3)
      for (const c of await contentOf(a, flushed)) known.add(c)
      // GC of the dropped sources (no grace) must not touch what a snapshot still needs.
      await a.call('runGc')
      await b.call('runGc')
      for (const name of ['m1_a', 'm1_b', 'm2_b']) {
        expect(await b.call('verifySnapshot', { name })).toMatchObject({ ok: true, missing: [], corrupt: [] })
      }

      // Phase 3: restores from both processes (the non-runner's job is run by the runner),
      // concurrent drops of one snapshot from both, a contested target name, more compaction.
      const phase3 = await Promise.all([
        a.settle('restoreSnapshot', { snapshotName: 'm1_a', targetCollectionName: 'restored_a' }),
        b.settle('restoreSnapshot', { snapshotName: 'm1_b', targetCollectionName: 'restored_b' }),
        a.settle('restoreSnapshot', { snapshotName: 'm2_a', targetCollectionName: 'restored_x' }),
        b.settle('restoreSnapshot', { snapshotName: 'm2_b', targetCollectionName: 'restored_x' }),
        a.settle('dropSnapshot', { name: 'm3_a' }),
        b.settle('dropSnapshot', { name: 'm3_a' }),
        a.settle('dropSnapshot', { name: 'm3_b' }),
        b.settle('compact', { collection: 'docs', sources: flushed.slice(0, 3).map((s) => s.id) }),
      ])
      expect(phase3.slice(0, 2).filter((r) => !r.ok)).toEqual([])
      expect([phase3[2].ok, phase3[3].ok].filter(Boolean)).toHaveLength(1)
      expect((phase3[2].ok ? phase3[3] : phase3[2]) as unknown).toMatchObject({ ok: false, error: { code: 'ALREADY_EXISTS' } })
      expect(phase3.slice(4).filter((r) => !r.ok)).toEqual([])
      const jobs: [Worker, number, string][] = [
        [b, (phase3[0] as { result: number }).result, 'restored_a'],
        [a, (phase3[1] as { result: number }).result, 'restored_b'],
        [phase3[2].ok ? b : a, ((phase3[2].ok ? phase3[2] : phase3[3]) as { result: number }).result, 'restored_x'],
      ]
      // Each job is awaited from the other process than the one that may have started it.
      const finished = await Promise.all(jobs.map(([w, jobId]) => w.call('waitForRestore', { jobId })))
      for (const job of finished) expect(job).toMatchObject({ state: 'completed', progress: 100 })
      for (const [, , target] of jobs) {
        const restored = await b.call<SegmentLike[]>('listSegments', { collection: target, states: ['flushed'] })
        expect(sum(restored.map((s) => s.numRows))).toBe(totalRows)
        // Every restored segment has the files of a segment the source collection had.
        expect((await contentOf(b, restored)).filter((c) => !known.has(c))).toEqual([])
      }
      const names = (await a.call<{ name: string }[]>('listSnapshots')).map((s) => s.name).sort()
      expect(names).toEqual(['dup', 'm1_a', 'm1_b', 'm2_a', 'm2_b'])
      expect((await b.call<{ name: string }[]>('listSnapshots')).map((s) => s.name).sort()).toEqual(names)
      expect(a.loopErrors).toEqual([])
      expect(b.loopErrors).toEqual([])
      // One runner all along: no step-down, no takeover, no crash.
      expect(a.events.filter((e) => e.event === 'leadershipChanged').map((e) => e.data)).toEqual([{ leader: true }])
      expect(b.events.filter((e) => e.event === 'leadershipChanged')).toEqual([])
      expect([a.child.exitCode, b.child.exitCode]).toEqual([null, null])
    })

    it.runIf(failover)('killing the runner mid-restore: the other process takes over within the lease TTL and finishes with identical files', async () => {
      // Copies are slowed down (250 ms each) so that the restore is still running when the runner dies.
      // 20 segments: a snapshot pins each in one etcd transaction, which --max-txn-ops 128 bounds.
      await a.call('setCopyDelay', { ms: 250 })
      await b.call('setCopyDelay', { ms: 250 })
      await b.call('createCollection', { name: 'big' })
      await b.call('seed', { collection: 'big', count: 20, files: 3, sizeBytes: 512, rows: 7 })
      await b.call('createSnapshot', { collectionName: 'big', snapshotName: 'big_snap' })

      // The non-runner accepts a job and cancels it; the runner rolls it back.
      const doomed = await b.call<number>('restoreSnapshot', { snapshotName: 'big_snap', targetCollectionName: 'big_cancelled' })
      await until(async () => ((await b.call('getRestoreState', { jobId: doomed })).progress > 0 ? true : undefined), 10_000, 20)
      await b.call('cancelRestore', { jobId: doomed })
      expect(await b.call('getRestoreState', { jobId: doomed })).toMatchObject({ state: 'cancelled' })
      expect(await b.settle('waitForRestore', { jobId: doomed })).toMatchObject({ ok: false, error: { code: 'RESTORE_FAILED' } })
      expect((await b.call<{ name: string }[]>('listSegments', { collection: 'big' })).length).toBe(20)
      expect(await b.settle('listSegments', { collection: 'big_cancelled' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } })

      // The non-runner accepts another job; once it is part-way, SIGKILL the runner.
      const jobId = await b.call<number>('restoreSnapshot', { snapshotName: 'big_snap', targetCollectionName: 'big_copy' })
      const waiting = b.call('waitForRestore', { jobId })
      const before = await until(async () => {
        const s = await b.call('getRestoreState', { jobId })
        return s.progress >= 10 ? s : undefined
      }, 10_000, 20)
      expect(before.progress).toBeLessThan(100)
      expect(a.leading).toBe(true)
      expect({ exitCode: a.child.exitCode, stderr: a.stderr }).toEqual({ exitCode: null, stderr: expect.any(String) })
      expect(b.leading).toBe(false)
      const killedAt = Date.now()
      await a.kill()

      const elected = await b.waitFor((e) => e.event === 'leadershipChanged' && e.data.leader === true && e.at >= killedAt, 10_000)
      // The lease (2 s) expires, etcd checks expiry every 500 ms, then B is elected.
      expect(elected.at - killedAt).toBeLessThan(2_000 + 1_500)
      const job = await waiting
      expect(job).toMatchObject({ state: 'completed', progress: 100, copiedSegments: 20, totalSegments: 20 })

      const source = await b.call<SegmentLike[]>('listSegments', { collection: 'big', states: ['flushed'] })
      const restored = await b.call<SegmentLike[]>('listSegments', { collection: 'big_copy', states: ['flushed'] })
      expect(restored).toHaveLength(20)
      expect(sum(restored.map((s) => s.numRows))).toBe(20 * 7)
      expect(await contentOf(b, restored)).toEqual(await contentOf(b, source))
      // Nothing but the recorded files under the target collection's keys (no duplicate copies).
      const targetKeys = restored.flatMap((s) => s.binlogs.flatMap((bl) => bl.files.map((f) => f.key))).sort()
      const collectionId = (restored[0] as unknown as { collectionId: number }).collectionId
      expect(await b.call('listObjects', { prefix: `files/insert_log/${collectionId}/` })).toEqual(targetKeys)
      expect(b.loopErrors).toEqual([])
      expect(a.child.signalCode).toBe('SIGKILL')
    })
  })
}
