import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Catalog } from '../../src/meta/catalog.js'
import type { SegmentInfo } from '../../src/catalog-types.js'
import { keys } from '../../src/meta/keys.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { backends, code, flushData, seedDocs, type TestStore } from './catalog-env.js'

describe.each(backends)('Catalog concurrency on $name', (backend) => {
  let store: TestStore

  beforeEach(async () => {
    store = await backend.make()
  })

  afterEach(async () => {
    await store.dispose()
  })

  it('50 parallel alloc + flush, then parallel compactions: unique IDs, no lost segments', async () => {
    const catalog = Catalog.over(store.meta)
    const coll = await seedDocs(catalog, 'docs', { shardsNum: 4 })
    const flushedSegs = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const seg = await catalog.allocSegment({ collection: 'docs' })
        return catalog.flushSegment(seg.id, flushData(`s${i}`, i + 1))
      }),
    )
    const ids = flushedSegs.map((s) => s.id)
    expect(new Set(ids).size).toBe(50)
    // Pair up segments of the same partition and compact all pairs at once, while more segments are allocated.
    const pairs = Array.from({ length: 25 }, (_, i) => [flushedSegs[2 * i], flushedSegs[2 * i + 1]])
    const [results, extra] = await Promise.all([
      Promise.all(pairs.map(([a, b], i) => catalog.compact({ collection: 'docs', sources: [a.id, b.id], result: flushData(`c${i}`, a.numRows + b.numRows) }))),
      Promise.all(Array.from({ length: 10 }, () => catalog.allocSegment({ collection: 'docs' }))),
    ])
    const all = await catalog.listSegments('docs')
    const allIds = all.map((s) => s.id)
    expect(new Set(allIds).size).toBe(85)
    expect(allIds).toEqual([...allIds].sort((a, b) => a - b))
    for (const id of [...ids, ...results.map((r) => r.id), ...extra.map((e) => e.id)]) expect(allIds).toContain(id)
    const byState = (s: SegmentInfo['state']) => all.filter((x) => x.state === s).length
    expect([byState('dropped'), byState('flushed'), byState('growing')]).toEqual([50, 25, 10])
    const rows = (await catalog.listSegments('docs', { states: ['flushed'] })).reduce((n, s) => n + s.numRows, 0)
    expect(rows).toBe(flushedSegs.reduce((n, s) => n + s.numRows, 0))
    // The allocator is ahead of every ID handed out (IDs come from blocks this process reserved).
    const next = Number(await store.meta.get(keys.nextId))
    expect(next).toBeGreaterThan(Math.max(coll.id, ...allIds))
  })

  it('two Catalog instances over one store lose no updates', async () => {
    const a = Catalog.over(store.meta)
    const b = Catalog.over(store.meta)
    await seedDocs(a)
    const names = Array.from({ length: 20 }, (_, i) => `p${i}`)
    const segs = await Promise.all([
      ...names.map((n, i) => (i % 2 === 0 ? a : b).createPartition('docs', n)),
      ...Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? b : a).allocSegment({ collection: 'docs' })),
    ])
    const partitions = (await b.getCollection('docs')).partitions.map((p) => p.name)
    expect(partitions.sort()).toEqual(['_default', ...names].sort())
    const ids = segs.map((s) => s.id)
    expect(new Set(ids).size).toBe(40)
    expect((await a.listSegments('docs')).length).toBe(20)
  })
})

describe('Catalog across processes (shared conditional batches)', () => {
  function twoProcesses(gateB?: () => Promise<void>) {
    const data = new Map<string, string>()
    const storeA = new MapMetaStore({ data })
    const storeB = new MapMetaStore({ data, gate: gateB })
    return { data, storeA, storeB, a: Catalog.over(storeA), b: Catalog.over(storeB) }
  }

  it('parallel mutations from two processes all land, with unique IDs', async () => {
    const { storeA, storeB, a, b } = twoProcesses()
    await storeA.open()
    await storeB.open()
    await seedDocs(a)
    const results = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).createPartition('docs', `p${i}`)),
      ...Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).allocSegment({ collection: 'docs' })),
    ])
    expect(new Set(results.map((r) => r.id)).size).toBe(30)
    expect((await b.getCollection('docs')).partitions).toHaveLength(11)
    expect(await a.listSegments('docs')).toHaveLength(20)
  })

  it('allocates IDs from a block per process: unique, without every allocation writing the allocator', async () => {
    const { data, storeA, storeB, a, b } = twoProcesses()
    await storeA.open()
    await storeB.open()
    let writes = 0
    for (const store of [storeA, storeB]) {
      const batch = store.batch.bind(store)
      store.batch = async (ops, o) => {
        if (ops.some((op) => op.key === keys.nextId)) writes++
        return batch(ops, o)
      }
    }
    const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).allocIds(1)))
    expect(new Set(ids).size).toBe(200)
    // One block reservation per process for 100 IDs each (blocks hold 256).
    expect(writes).toBe(2)
    expect(storeA.conflicts + storeB.conflicts).toBeLessThanOrEqual(1)
    expect(Number(data.get(keys.nextId))).toBeGreaterThan(Math.max(...ids))
    // A request larger than a block reserves exactly its size.
    const big = await a.allocIds(1000)
    expect(big).toBeGreaterThan(Math.max(...ids))
    expect(await b.allocIds(1)).not.toBe(big)
  })

  it('a segment allocated while another process drops the collection ends up dropped', async () => {
    let reached!: () => void
    const atGate = new Promise<void>((r) => (reached = r))
    let release!: () => void
    const released = new Promise<void>((r) => (release = r))
    let gated = false
    const { storeA, storeB, a, b } = twoProcesses(async () => {
      if (!gated) return
      gated = false
      reached()
      await released
    })
    await storeA.open()
    await storeB.open()
    await seedDocs(a)
    gated = true
    const dropping = b.dropCollection('docs')
    await atGate // B read the collection's segments (none) and is about to commit
    const seg = await a.allocSegment({ collection: 'docs' })
    release()
    await dropping
    expect(storeB.conflicts).toBe(1) // B's commit saw the collection change, retried and saw the segment
    expect(await a.getSegment(seg.id)).toMatchObject({ state: 'dropped', droppedAt: expect.any(Number) })
    await expect(a.getCollection('docs')).rejects.toEqual(code('NOT_FOUND'))
  })

  it('two processes creating the same index name: exactly one wins', async () => {
    const { storeA, storeB, a, b } = twoProcesses()
    await storeA.open()
    await storeB.open()
    await a.createCollection({ name: 'docs', schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }, { name: 'v', dataType: 'FloatVector', dim: 4 }, { name: 'w', dataType: 'FloatVector', dim: 4 }] } })
    const settled = await Promise.allSettled([
      a.createIndex('docs', { fieldName: 'v', indexName: 'idx' }),
      b.createIndex('docs', { fieldName: 'w', indexName: 'idx' }),
    ])
    expect(settled.map((s) => s.status).sort()).toEqual(['fulfilled', 'rejected'])
    expect(settled.find((s) => s.status === 'rejected')).toMatchObject({ reason: code('ALREADY_EXISTS') })
    expect(await a.listIndexes('docs')).toHaveLength(1)
  })
})
