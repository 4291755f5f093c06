import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Catalog } from '../../src/meta/catalog.js'
import type { SegmentState } from '../../src/catalog-types.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { dump, flushData } from './catalog-env.js'

/**
 * Model-based test: random sequences of partition and segment operations (valid and
 * invalid) against a tiny model. After every command the catalog's segments and
 * partitions equal the model's, IDs only grow, and a rejected command wrote nothing.
 */

interface ModelSegment {
  state: SegmentState
  partitionId: number
  numRows: number
}

interface Model {
  /** Live partitions: name → ID. */
  partitions: Map<string, number>
  segments: Map<number, ModelSegment>
  maxId: number
}

interface Real {
  catalog: Catalog
  meta: MemoryMetaStore
}

const PARTITIONS = ['_default', 'p1', 'p2']

/**
 * A segment ID chosen from the model by `pick`: 0 an unknown ID, 1–2 any segment, higher
 * preferably one in `state` (so that valid operations are frequent).
 */
function pickId(m: Model, pick: number, state?: SegmentState): number {
  const all = [...m.segments.keys()].reverse()
  const preferred = all.filter((id) => state === undefined || m.segments.get(id)?.state === state)
  const from = pick <= 2 || preferred.length === 0 ? all : preferred
  return pick === 0 || from.length === 0 ? m.maxId + 1000 : from[pick % from.length]
}

async function expectRejectedCleanly(r: Real, fn: () => Promise<unknown>, codes: string[]): Promise<void> {
  const before = await dump(r.meta)
  const err = await fn().then(() => undefined, (e: unknown) => e)
  expect(err).toBeDefined()
  expect(codes).toContain((err as { code?: string }).code)
  expect(await dump(r.meta)).toEqual(before)
}

async function checkInvariants(m: Model, r: Real): Promise<void> {
  const segs = await r.catalog.listSegments('docs')
  expect(segs.map((s) => s.id)).toEqual([...m.segments.keys()].sort((a, b) => a - b))
  for (const s of segs) {
    const ms = m.segments.get(s.id) as ModelSegment
    expect([s.state, s.numRows, s.partitionId]).toEqual([ms.state, ms.numRows, ms.partitionId])
    expect(s.state === 'dropped').toBe(s.droppedAt !== undefined)
  }
  const partitions = (await r.catalog.getCollection('docs')).partitions.map((p) => [p.name, p.id])
  expect(new Map(partitions as [string, number][])).toEqual(m.partitions)
}

class Alloc implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    const partition = PARTITIONS[this.p]
    if (!m.partitions.has(partition)) return expectRejectedCleanly(r, () => r.catalog.allocSegment({ collection: 'docs', partition }), ['NOT_FOUND'])
    const s = await r.catalog.allocSegment({ collection: 'docs', partition })
    expect(s.id).toBeGreaterThan(m.maxId)
    m.maxId = s.id
    m.segments.set(s.id, { state: 'growing', partitionId: m.partitions.get(partition) as number, numRows: 0 })
    await checkInvariants(m, r)
  }
  toString = () => `alloc(${PARTITIONS[this.p]})`
}

class Flush implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number, readonly rows: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    const id = pickId(m, this.pick, 'growing')
    const s = m.segments.get(id)
    if (s?.state !== 'growing') return expectRejectedCleanly(r, () => r.catalog.flushSegment(id, flushData(`f${id}`, this.rows)), ['NOT_FOUND', 'FAILED_PRECONDITION'])
    await r.catalog.flushSegment(id, flushData(`f${id}`, this.rows))
    s.state = 'flushed'
    s.numRows = this.rows
    await checkInvariants(m, r)
  }
  toString = () => `flush(${this.pick}, ${this.rows})`
}

class Compact implements fc.AsyncCommand<Model, Real> {
  constructor(readonly picks: number[]) {}
  check = () => true
  async run(m: Model, r: Real) {
    const ids = [...new Set(this.picks.map((p) => pickId(m, p, 'flushed')))]
    const segs = ids.map((id) => m.segments.get(id))
    const ok = segs.every((s) => s?.state === 'flushed') && new Set(segs.map((s) => s?.partitionId)).size === 1
    const rows = segs.reduce((n, s) => n + (s?.numRows ?? 0), 0)
    const request = { collection: 'docs', sources: ids, result: flushData(`c${m.maxId + 1}`, rows) }
    if (!ok) return expectRejectedCleanly(r, () => r.catalog.compact(request), ['NOT_FOUND', 'FAILED_PRECONDITION', 'INVALID_ARGUMENT'])
    const result = await r.catalog.compact(request)
    expect(result.id).toBeGreaterThan(m.maxId)
    m.maxId = result.id
    for (const s of segs) (s as ModelSegment).state = 'dropped'
    m.segments.set(result.id, { state: 'flushed', partitionId: (segs[0] as ModelSegment).partitionId, numRows: rows })
    await checkInvariants(m, r)
  }
  toString = () => `compact(${this.picks.join(', ')})`
}

class DropSegment implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    const id = pickId(m, this.pick)
    const s = m.segments.get(id)
    if (s === undefined) return expectRejectedCleanly(r, () => r.catalog.dropSegment(id), ['NOT_FOUND'])
    await r.catalog.dropSegment(id)
    s.state = 'dropped'
    await checkInvariants(m, r)
  }
  toString = () => `dropSegment(${this.pick})`
}

class CreatePartition implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    const name = PARTITIONS[this.p]
    if (m.partitions.has(name)) return expectRejectedCleanly(r, () => r.catalog.createPartition('docs', name), ['ALREADY_EXISTS'])
    const p = await r.catalog.createPartition('docs', name)
    expect(p.id).toBeGreaterThan(m.maxId)
    m.maxId = p.id
    m.partitions.set(name, p.id)
    await checkInvariants(m, r)
  }
  toString = () => `createPartition(${PARTITIONS[this.p]})`
}

class DropPartition implements fc.AsyncCommand<Model, Real> {
  constructor(readonly p: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    const name = PARTITIONS[this.p]
    if (name === '_default' || !m.partitions.has(name)) {
      return expectRejectedCleanly(r, () => r.catalog.dropPartition('docs', name), ['INVALID_ARGUMENT', 'NOT_FOUND'])
    }
    await r.catalog.dropPartition('docs', name)
    const id = m.partitions.get(name)
    m.partitions.delete(name)
    for (const s of m.segments.values()) if (s.partitionId === id) s.state = 'dropped'
    await checkInvariants(m, r)
  }
  toString = () => `dropPartition(${PARTITIONS[this.p]})`
}

const part = fc.integer({ min: 0, max: PARTITIONS.length - 1 })
const pick = fc.nat({ max: 12 })
const commands = [
  part.map((p) => new Alloc(p)),
  part.map((p) => new Alloc(p)),
  part.map((p) => new Alloc(p)),
  fc.tuple(pick, fc.nat({ max: 1000 })).map(([p, rows]) => new Flush(p, rows)),
  fc.tuple(pick, fc.nat({ max: 1000 })).map(([p, rows]) => new Flush(p, rows)),
  fc.tuple(pick, fc.nat({ max: 1000 })).map(([p, rows]) => new Flush(p, rows)),
  fc.array(pick, { minLength: 1, maxLength: 3 }).map((ps) => new Compact(ps)),
  fc.array(pick, { minLength: 1, maxLength: 3 }).map((ps) => new Compact(ps)),
  pick.map((p) => new DropSegment(p)),
  part.map((p) => new CreatePartition(p)),
  part.map((p) => new DropPartition(p)),
]

describe('Catalog model', () => {
  it('matches a simple model over random operation sequences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 60, size: 'max' }), async (cmds) => {
        const meta = new MemoryMetaStore()
        await meta.open()
        const catalog = Catalog.over(meta)
        const info = await catalog.createCollection({
          name: 'docs',
          shardsNum: 2,
          partitionNames: ['_default', 'p1'],
          schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }, { name: 'vec', dataType: 'FloatVector', dim: 4 }] },
        })
        const model: Model = {
          partitions: new Map(info.partitions.map((p) => [p.name, p.id])),
          segments: new Map(),
          maxId: Math.max(...info.partitions.map((p) => p.id)),
        }
        await fc.asyncModelRun(() => ({ model, real: { catalog, meta } }), cmds)
        await meta.close()
      }),
      { numRuns: process.env.VECSNAP_LONG ? 500 : 25 },
    )
  })
})
