import { describe, expect, it } from 'vitest'
import type { SnapshotSegment } from '../../src/snapshot/snapshot-types.js'
import { Limiter } from '../../src/restore/limiter.js'
import { progressOf, taskCountOf, taskRange, toJobInfo, type JobRecord } from '../../src/restore/job-state.js'
import { countTaskIds, planTask, type PlanContext } from '../../src/restore/target-plan.js'
import { layout } from '../../src/storage/layout.js'

/** Pure parts of the restore engine: the target plan, job arithmetic and the copy limiter. */

function segment(id: number, o: Partial<SnapshotSegment> = {}): SnapshotSegment {
  return {
    id,
    partitionId: 10,
    channel: 'src_v0',
    level: 'L1',
    numRows: 5,
    binlogs: [
      { fieldId: 100, files: [{ key: `host/${id}/a`, size: 1, logId: 7 }, { key: `host/${id}/b`, size: 2 }] },
      { fieldId: 101, files: [{ key: `host/${id}/c`, size: 3 }] },
    ],
    statslogs: [{ fieldId: 100, files: [{ key: `host/${id}/s`, size: 4, logId: 8 }] }],
    deltalogs: [],
    bm25logs: [],
    indexes: [{ indexId: 50, buildId: 900 + id, files: [{ key: `idx/${id}/HNSW_0`, size: 5 }, { key: `idx/${id}/meta`, size: 6 }] }],
    textIndexes: [{ fieldId: 101, buildId: 800 + id, files: [{ key: `txt/${id}/index`, size: 7 }] }],
    jsonKeyIndexes: [],
    ...o,
  }
}

const ctx: PlanContext = {
  job: { jobId: 1, collectionId: 2000, segmentIdBase: 3000, partitionMap: [[10, 2010], [11, 2011]], targetChannels: ['dst_v0', 'dst_v1'] },
  sourceChannels: ['src_v0', 'src_v1'],
  first: 4,
  idBase: 5000,
  buildCount: 4,
  now: 42,
}

describe('planTask', () => {
  it('maps segments by ordinal onto target IDs and builds keys from them', () => {
    const segs = [segment(1), segment(2, { partitionId: 11, channel: 'src_v1' })]
    expect(countTaskIds(segs)).toEqual({ buildCount: 4, logIdCount: 4 })
    const plan = planTask(ctx, segs)
    expect(plan.map((p) => [p.ordinal, p.sourceId, p.target.id, p.target.partitionId, p.target.channel])).toEqual([
      [4, 1, 3004, 2010, 'dst_v0'],
      [5, 2, 3005, 2011, 'dst_v1'],
    ])
    const [a] = plan
    // Source log IDs are kept; files without one get IDs after the build IDs, in order.
    expect(a.target.binlogs[0].files.map((f) => [f.key, f.logId])).toEqual([
      [layout.insertLog({ collectionId: 2000, partitionId: 2010, segmentId: 3004, fieldId: 100, logId: 7 }), 7],
      [layout.insertLog({ collectionId: 2000, partitionId: 2010, segmentId: 3004, fieldId: 100, logId: 5004 }), 5004],
    ])
    expect(a.target.binlogs[1].files[0].logId).toBe(5005)
    expect(plan[1].target.binlogs[0].files[1].logId).toBe(5006)
    // New build IDs in order of first use, same index IDs, file names kept, version 1.
    expect(a.target.indexes).toEqual([
      {
        indexId: 50,
        buildId: 5000,
        files: [
          { key: layout.indexFile({ buildId: 5000, version: 1, partitionId: 2010, segmentId: 3004, fileName: 'HNSW_0' }), size: 5 },
          { key: layout.indexFile({ buildId: 5000, version: 1, partitionId: 2010, segmentId: 3004, fileName: 'meta' }), size: 6 },
        ],
      },
    ])
    expect(a.target.textIndexes[0].buildId).toBe(5001)
    expect(plan[1].target.indexes[0].buildId).toBe(5002)
    expect(a.copies.map((c) => c.from)).toEqual(['host/1/a', 'host/1/b', 'host/1/c', 'host/1/s', 'idx/1/HNSW_0', 'idx/1/meta', 'txt/1/index'])
    expect(a.bytes).toBe(28)
    expect(a.target).toMatchObject({ state: 'flushed', collectionId: 2000, numRows: 5, level: 'L1', createdAt: 42 })
    // Deterministic: the rollback and liveKeys compute the same keys.
    expect(planTask(ctx, segs)).toEqual(plan)
  })

  it('refuses segments it cannot map', () => {
    expect(() => planTask(ctx, [segment(1, { partitionId: 99 })])).toThrow(/partition 99/)
    const clash = segment(1, { indexes: [{ indexId: 50, buildId: 1, files: [{ key: 'x/HNSW', size: 1 }, { key: 'y/HNSW', size: 1 }] }] })
    expect(() => planTask(ctx, [clash])).toThrow(/same target key/)
  })
})

describe('job arithmetic', () => {
  it('splits jobs into tasks and computes progress', () => {
    expect(taskCountOf({ segmentsPerTask: 10, totalSegments: 0 })).toBe(0)
    expect(taskCountOf({ segmentsPerTask: 10, totalSegments: 25 })).toBe(3)
    expect(taskRange({ segmentsPerTask: 10, totalSegments: 25 }, 2)).toEqual({ first: 20, count: 5 })
    expect(progressOf({ copiedSegments: 0, totalSegments: 0 })).toBe(100)
    expect(progressOf({ copiedSegments: 2, totalSegments: 3 })).toBe(66)
    const job = { jobId: 1, createdAt: 100, copiedSegments: 1, totalSegments: 3, state: 'in_progress' } as JobRecord
    expect(toJobInfo(job, 250)).toMatchObject({ progress: 33, timeCostMs: 150 })
    expect(toJobInfo({ ...job, state: 'completed', finishedAt: 180 }, 999)).toMatchObject({ progress: 100, timeCostMs: 80, finishedAt: 180 })
  })
})

describe('Limiter', () => {
  it('runs at most `concurrency` functions at once, in FIFO order', async () => {
    const limiter = new Limiter(2)
    let running = 0
    let peak = 0
    const order: number[] = []
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        limiter.add(async () => {
          order.push(i)
          peak = Math.max(peak, ++running)
          await new Promise((r) => setTimeout(r, 2))
          running--
        }),
      ),
    )
    expect(peak).toBe(2)
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    await expect(limiter.add(async () => Promise.reject(new Error('x')))).rejects.toThrow('x')
    expect(await limiter.add(async () => 7)).toBe(7)
    expect(() => new Limiter(0)).toThrow(TypeError)
  })
})
