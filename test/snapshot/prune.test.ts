import { describe, expect, it } from 'vitest'
import { segmentFiles } from '../../src/meta/segment-files.js'
import type { SegmentInfo } from '../../src/catalog-types.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { backends, code, flushedSegment, openManager, seedCollection, snapshotProblems, snapshotRecords, worldPerTest, type World } from './env.js'
import { overrideObjects } from '../helpers/override-objects.js'

const HOUR = 3_600_000

function bytes(...segments: SegmentInfo[]): number {
  let total = 0
  for (const s of segments) for (const { file } of segmentFiles(s)) total += file.size
  return total
}

/** Snapshots `names` of `docs` one hour apart; before each, drops the oldest live segment and flushes a new one. Returns the segments dropped, by snapshot. */
async function hourlyHistory(w: World, names: string[]): Promise<SegmentInfo[]> {
  w.clock.frozen = true
  const live = [...w.segs]
  const gone: SegmentInfo[] = []
  for (const name of names) {
    w.clock.t += HOUR
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: name })
    const oldest = live.shift()!
    await w.manager.catalog.dropSegment(oldest.id)
    gone.push(oldest)
    live.push(await flushedSegment(w.manager, w.stores.objects, w.coll, { numRows: 3 }))
  }
  return gone
}

/** SPEC section 12: pruneSnapshots applies a retention policy through the normal drop path. */
describe.each(backends)('pruneSnapshots on $name', (backend) => {
  const w = worldPerTest(backend)

  it('a dry run reports what the real run then drops and frees', async () => {
    const gone = await hourlyHistory(w, ['s1', 's2', 's3', 's4'])
    const policy = { keepLast: 2 }
    const dry = await w.manager.pruneSnapshots({ policy, dryRun: true })
    expect(dry).toEqual({
      dryRun: true,
      kept: [
        { name: 's4', collectionName: 'docs', reasons: ['last 2'] },
        { name: 's3', collectionName: 'docs', reasons: ['last 2'] },
      ],
      // s1 alone holds segment 0 (dropped before s2); segment 1 is in s1 and s2: freed only with both.
      dropped: [
        { name: 's2', collectionName: 'docs', reclaimableBytes: 0 },
        { name: 's1', collectionName: 'docs', reclaimableBytes: bytes(gone[0]) },
      ],
      failed: [],
      reclaimedBytes: bytes(gone[0], gone[1]),
    })
    expect(await w.manager.reclaimableBytes(['s1', 's2'])).toBe(dry.reclaimedBytes)
    expect((await w.manager.listSnapshots()).map((s) => s.name)).toEqual(['s1', 's2', 's3', 's4'])

    const real = await w.manager.pruneSnapshots({ policy })
    expect(real).toEqual({ ...dry, dryRun: false })
    expect((await w.manager.listSnapshots()).map((s) => s.name)).toEqual(['s3', 's4'])
    expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
    // Freed for GC: the files only s1 and s2 held are now collectable.
    w.clock.t += 10 * 24 * HOUR
    const gc = await w.manager.runGc()
    expect(gc.deletedBytes).toBe(real.reclaimedBytes)
  })

  it('always keeps held snapshots and those a restore reads, listing every reason', async () => {
    await hourlyHistory(w, ['s1', 's2', 's3'])
    await w.manager.holdSnapshot('s1', { tag: 'legal' })
    await w.manager.holdSnapshot('s1', { tag: 'audit' })
    const jobId = await w.manager.restoreSnapshot({ snapshotName: 's2', targetCollectionName: 'copy' })
    const report = await w.manager.pruneSnapshots({ policy: { keepLast: 1 } })
    expect(report.kept).toEqual([
      { name: 's3', collectionName: 'docs', reasons: ['last 1'] },
      { name: 's2', collectionName: 'docs', reasons: [`restore job ${jobId} reads it`] },
      { name: 's1', collectionName: 'docs', reasons: ['held: audit', 'held: legal'] },
    ])
    expect(report.dropped).toEqual([])
    await w.manager.cancelRestore(jobId)
  })

  it('an expired hold keeps nothing', async () => {
    await hourlyHistory(w, ['s1', 's2'])
    await w.manager.holdSnapshot('s1', { tag: 'export', ttlMs: HOUR })
    expect((await w.manager.pruneSnapshots({ policy: { keepLast: 1 }, dryRun: true })).kept.map((k) => k.name)).toEqual(['s2', 's1'])
    w.clock.t += HOUR
    const report = await w.manager.pruneSnapshots({ policy: { keepLast: 1 } })
    expect(report.dropped.map((d) => d.name)).toEqual(['s1'])
    expect((await w.manager.listSnapshots()).map((s) => s.name)).toEqual(['s2'])
  })

  it('prunes each collection on its own, or only the one named', async () => {
    const other = await seedCollection(w.manager, 'other')
    await flushedSegment(w.manager, w.stores.objects, other, { numRows: 1 })
    for (const name of ['d1', 'd2']) await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: name })
    for (const name of ['o1', 'o2']) await w.manager.createSnapshot({ collectionName: 'other', snapshotName: name })
    const only = await w.manager.pruneSnapshots({ collectionName: 'other', policy: { keepLast: 1 }, dryRun: true })
    expect(only.kept.map((k) => k.name)).toEqual(['o2'])
    expect(only.dropped.map((d) => d.name)).toEqual(['o1'])
    const all = await w.manager.pruneSnapshots({ policy: { keepLast: 1 } })
    expect(all.kept.map((k) => k.name)).toEqual(['d2', 'o2'])
    expect((await w.manager.listSnapshots()).map((s) => s.name)).toEqual(['d2', 'o2'])
  })

  it('two prunes at once report each drop once, and their figures never add up to more than was freed', async () => {
    const gone = await hourlyHistory(w, ['s1', 's2', 's3', 's4'])
    const policy = { keepLast: 2 }
    const reports = await Promise.all([w.manager.pruneSnapshots({ policy }), w.manager.pruneSnapshots({ policy })])
    expect(reports.flatMap((r) => r.failed)).toEqual([])
    expect(reports.flatMap((r) => r.dropped.map((d) => d.name)).sort()).toEqual(['s1', 's2'])
    expect(reports[0].reclaimedBytes + reports[1].reclaimedBytes).toBeLessThanOrEqual(bytes(gone[0], gone[1]))
    expect((await w.manager.listSnapshots()).map((s) => s.name)).toEqual(['s3', 's4'])
    expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
  })

  it('rejects a bad policy or options before dropping anything', async () => {
    await hourlyHistory(w, ['s1', 's2'])
    for (const policy of [{}, { keepLast: 0 }, { keepDayly: 3 }, { keepLast: 1, minCount: 4, maxCount: 2 }, { keepDaily: 1, timeZone: 'Nowhere/Land' }]) {
      await expect(w.manager.pruneSnapshots({ policy: policy as never })).rejects.toEqual(code('INVALID_ARGUMENT'))
    }
    await expect(w.manager.pruneSnapshots({ policy: { keepLast: '1' } as never })).rejects.toThrow(TypeError)
    await expect(w.manager.pruneSnapshots({ policy: { keepLast: 1 }, dryRun: 'yes' as never })).rejects.toThrow(TypeError)
    await expect(w.manager.pruneSnapshots(undefined as never)).rejects.toThrow(TypeError)
    // A typo must not turn a dry run into a real one.
    await expect(w.manager.pruneSnapshots({ policy: { keepLast: 1 }, dryrun: true } as never)).rejects.toEqual(code('INVALID_ARGUMENT'))
    expect((await w.manager.listSnapshots()).map((s) => s.name)).toEqual(['s1', 's2'])
  })
})

describe('pruneSnapshots when a drop fails', () => {
  const w = worldPerTest(backends[0])

  it('reports the failure, drops the others, and counts only what those free', async () => {
    const gone = await hourlyHistory(w, ['s1', 's2', 's3'])
    const [s1] = (await snapshotRecords(w.stores.meta)).filter((r) => r.name === 's1')
    await w.manager.close()
    // Deleting s1's list object fails: its drop rejects after marking it deleting.
    const inner = w.stores.objects
    const objects = overrideObjects(inner, {
      delete: async (keys: readonly string[], o?: Parameters<ObjectStore['delete']>[1]) => {
        if (keys.includes(s1.list!.key)) throw new Error('disk on fire')
        return inner.delete(keys, o)
      },
    })
    w.manager = await openManager(w.stores.meta, objects, { now: w.clock.now })
    const report = await w.manager.pruneSnapshots({ policy: { keepLast: 1 } })
    expect(report.failed).toEqual([{ name: 's1', code: 'IO_ERROR', message: expect.stringMatching(/disk on fire/) }])
    expect(report.dropped.map((d) => d.name)).toEqual(['s2'])
    // s2 alone frees nothing: segment 1 is also in s1, which stays.
    expect(report.reclaimedBytes).toBe(0)
    expect(bytes(gone[1])).toBeGreaterThan(0)
    expect((await w.manager.listSnapshots()).map((s) => s.name)).toEqual(['s3'])
  })
})
