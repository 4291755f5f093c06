import { setImmediate as tick } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { keys } from '../../src/meta/keys.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { MetaBatchOptions, MetaOperation } from '../../src/meta/meta-store.js'
import { Transactor } from '../../src/meta/transaction.js'
import { DoneRecorder } from '../../src/restore/done-recorder.js'
import type { JobRecord } from '../../src/restore/job-state.js'
import type { PlannedSegment } from '../../src/restore/target-plan.js'

/** A running job with nothing copied yet. */
function job(): JobRecord {
  return {
    jobId: 7,
    snapshotId: 1,
    snapshotName: 's',
    sourceCollectionId: 2,
    targetCollectionName: 't',
    collectionId: 3,
    state: 'in_progress',
    reason: '',
    createdAt: 0,
    totalSegments: 10,
    totalBytes: 100,
    expectedRows: 0,
    segmentIdBase: 100,
    segmentsPerTask: 10,
    taskCount: 1,
    copiedSegments: 0,
    copiedBytes: 0,
    completedTasks: 0,
    restoredRows: 0,
    partitionMap: [],
    targetChannels: [],
    indexIds: [],
  }
}

function segment(ordinal: number): PlannedSegment {
  return { ordinal, sourceId: ordinal, target: {} as PlannedSegment['target'], copies: [], bytes: 10 }
}

/** A memory store that counts the batches that write a segment marker. */
async function env() {
  const store = new MemoryMetaStore()
  await store.open()
  await store.batch([{ type: 'put', key: keys.restoreJob(7), value: JSON.stringify(job()) }])
  let commits = 0
  const batch = store.batch.bind(store)
  store.batch = (ops: readonly MetaOperation[], o?: MetaBatchOptions) => {
    if (ops.some((op) => op.key.startsWith('r/seg-done/'))) commits++
    return batch(ops, o)
  }
  const ctx = { meta: store, transactor: new Transactor(store) }
  return { store, ctx, commits: () => commits }
}

describe('DoneRecorder', () => {
  it('gathers the segments that finish within the interval into one commit, and flushes at once when asked', async () => {
    const { store, ctx, commits } = await env()
    const progress: number[] = []
    // An interval no test run reaches: only flushed() ends the wait.
    const recorder = new DoneRecorder(ctx, 7, new AbortController().signal, (j) => progress.push(j.copiedSegments), 60_000)
    const added: Promise<void>[] = []
    for (let i = 0; i <= 5; i++) {
      added.push(recorder.add([], segment(i)))
      await tick()
    }
    expect(commits()).toBe(0)
    await recorder.flushed()
    await Promise.all(added)
    expect(commits()).toBe(1)
    expect(progress).toEqual([6])
    const stored = JSON.parse((await store.get(keys.restoreJob(7))) as string) as JobRecord
    expect(stored).toMatchObject({ copiedSegments: 6, copiedBytes: 60 })
    for (let i = 0; i <= 5; i++) expect(await store.get(keys.restoreSegmentDone(7, i))).toBe('')
    await store.close()
  })

  it('commits a record added just as the previous commit settled', async () => {
    const { store, ctx, commits } = await env()
    const recorder = new DoneRecorder(ctx, 7, new AbortController().signal, () => undefined, 0)
    // Each add comes in the continuation of the previous commit: a drain that was ending
    // then must not leave it queued (this hung before).
    for (let i = 0; i < 3; i++) await recorder.add([], segment(i))
    await recorder.flushed()
    expect(commits()).toBe(3)
    await store.close()
  })

  it('stops waiting when the job is aborted, and rejects what it could not record', async () => {
    const { store, ctx, commits } = await env()
    const controller = new AbortController()
    const recorder = new DoneRecorder(ctx, 7, controller.signal, () => undefined, 60_000)
    const waiting = recorder.add([], segment(0))
    await tick()
    controller.abort(new Error('job stopped'))
    await expect(waiting).rejects.toThrow()
    await expect(recorder.flushed()).rejects.toThrow()
    expect(commits()).toBe(0)
    expect(await store.get(keys.restoreSegmentDone(7, 0))).toBeUndefined()
    await store.close()
  })
})
