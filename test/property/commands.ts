import fc from 'fast-check'
import { expect } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import type { FileClass } from '../../src/meta/segment-files.js'
import { createDocsCollection } from '../helpers/seed.js'
import { bytesFor, checkInvariants, checkNoLeak, hashOf, resync, type BuildModel, type CollModel, type FileModel, type Model, type Real, type SegModel } from './harness.js'

/**
 * The commands of the whole-system property test. Each picks its targets at run time
 * from the model (`pick` modulo the candidates), acts on the real system, and updates
 * the model only once the action succeeded. `recover` reconciles the model with what
 * survived when a crash cut the action short.
 */

type Cmd = fc.AsyncCommand<Model, Real, false>

function pickOf<T>(items: readonly T[], pick: number): T {
  return items[pick % items.length]
}

function liveSegments(m: Model): { s: SegModel; c: CollModel }[] {
  const out: { s: SegModel; c: CollModel }[] = []
  for (const c of m.colls.values()) for (const s of m.flushedOf(c)) out.push({ s, c })
  return out
}

const COLLECTION_NAMES = ['a', 'b', 'c']

/** A step that can also run with a crash injected. */
abstract class Step implements Cmd {
  abstract check(m: Readonly<Model>): boolean
  /** Acts on the real system; updates the model once everything succeeded. */
  abstract act(m: Model, r: Real): Promise<void>
  /** After a crash cut `act` short and the manager reopened: reconcile what the catalog does not tell. */
  async recover(_m: Model, _r: Real): Promise<void> {}
  /** Extra checks after a completed step. */
  async after(_m: Model, _r: Real): Promise<void> {}
  abstract toString(): string

  async run(m: Model, r: Real): Promise<void> {
    await this.act(m, r)
    await this.after(m, r)
    await checkInvariants(m, r)
  }
}

class CreateCollection extends Step {
  constructor(readonly pick: number) {
    super()
  }
  check(m: Readonly<Model>): boolean {
    return COLLECTION_NAMES.some((n) => !m.colls.has(n))
  }
  async act(m: Model, r: Real): Promise<void> {
    const name = pickOf(COLLECTION_NAMES.filter((n) => !m.colls.has(n)), this.pick)
    const { catalog } = r.manager
    await createDocsCollection(catalog, name, { dim: 4 })
    const ix = await catalog.createIndex(name, { fieldName: 'vec', indexName: 'vec_idx', params: {} })
    m.colls.set(name, m.collFromInfo(await catalog.getCollection(name), ix))
  }
  toString(): string {
    return `CreateCollection(${this.pick})`
  }
}

/** Writes a host file; resolves its model and its catalog entry. */
async function hostFile(m: Model, r: Real, key: string, cls: FileClass): Promise<{ f: FileModel; entry: { key: string; size: number } }> {
  const f = await r.write(m, key, cls)
  return { f, entry: { key, size: bytesFor(key).byteLength } }
}

/** Writes the file of one build and records the build in the catalog. */
async function build(m: Model, r: Real, c: CollModel, segmentId: number, kind: BuildModel['kind']): Promise<BuildModel> {
  const { catalog } = r.manager
  const k = { buildId: 900_000 + ++m.seq, version: 1, collectionId: c.id, partitionId: c.partitionId, segmentId }
  if (kind === 'index') {
    const { f, entry } = await hostFile(m, r, catalog.layout.indexFile({ ...k, fileName: 'HNSW' }), 'index')
    const info = await catalog.addSegmentIndex(segmentId, { indexName: c.liveIndexName as string, files: [entry] })
    return { kind, buildId: info.buildId, indexId: info.indexId, files: [f] }
  }
  const fieldId = kind === 'textIndex' ? c.fields.text : c.fields.meta
  const key = kind === 'textIndex' ? catalog.layout.textIndex({ ...k, fieldId, fileName: 'text' }) : catalog.layout.jsonKeyIndex({ ...k, fieldId, fileName: 'keys' })
  const { f, entry } = await hostFile(m, r, key, kind)
  const request = { fieldId, files: [entry] }
  const info = kind === 'textIndex' ? await catalog.addTextIndex(segmentId, request) : await catalog.addJsonKeyIndex(segmentId, request)
  return { kind, buildId: info.buildId, fieldId, files: [f] }
}

class WriteSegment extends Step {
  constructor(readonly pick: number, readonly indexes: boolean) {
    super()
  }
  check(m: Readonly<Model>): boolean {
    return m.colls.size > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    const c = pickOf([...m.colls.values()], this.pick)
    const { catalog } = r.manager
    const seg = await catalog.allocSegment({ collection: c.name })
    const ids = { collectionId: c.id, partitionId: c.partitionId, segmentId: seg.id }
    const log = (kind: 'insertLog' | 'statsLog' | 'deltaLog' | 'bm25Log', cls: FileClass, fieldId: number) =>
      hostFile(m, r, catalog.layout[kind]({ ...ids, fieldId, logId: ++m.seq }), cls)
    const pk = await log('insertLog', 'binlog', c.fields.pk)
    const vec = await log('insertLog', 'binlog', c.fields.vec)
    const stats = await log('statsLog', 'statslog', c.fields.pk)
    const delta = await log('deltaLog', 'deltalog', c.fields.pk)
    const bm25 = await log('bm25Log', 'bm25log', c.fields.text)
    const numRows = 1 + (m.seq % 7)
    await catalog.flushSegment(seg.id, {
      numRows,
      binlogs: [{ fieldId: c.fields.pk, files: [pk.entry] }, { fieldId: c.fields.vec, files: [vec.entry] }],
      statslogs: [{ fieldId: c.fields.pk, files: [stats.entry] }],
      deltalogs: [{ fieldId: c.fields.pk, files: [delta.entry] }],
      bm25logs: [{ fieldId: c.fields.text, files: [bm25.entry] }],
    })
    const s: SegModel = { id: seg.id, collectionId: c.id, state: 'flushed', numRows, logs: [pk.f, vec.f, stats.f, delta.f, bm25.f], builds: [] }
    if (this.indexes) {
      if (c.liveIndexId !== undefined) s.builds.push(await build(m, r, c, seg.id, 'index'))
      s.builds.push(await build(m, r, c, seg.id, 'textIndex'))
      s.builds.push(await build(m, r, c, seg.id, 'jsonKeyIndex'))
    }
    m.segs.set(s.id, s)
  }
  toString(): string {
    return `WriteSegment(${this.pick}, ${this.indexes})`
  }
}

class AddDeletes extends Step {
  constructor(readonly pick: number) {
    super()
  }
  check(m: Readonly<Model>): boolean {
    return liveSegments(m as Model).length > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    const { s, c } = pickOf(liveSegments(m), this.pick)
    const { catalog } = r.manager
    // Above every logId a fresh segment uses: a restored segment keeps its source's logIds.
    const d = await hostFile(m, r, catalog.layout.deltaLog({ collectionId: c.id, partitionId: c.partitionId, segmentId: s.id, fieldId: c.fields.pk, logId: 1_000_000 + ++m.seq }), 'deltalog')
    await catalog.addDeltalogs(s.id, [{ fieldId: c.fields.pk, files: [d.entry] }])
    s.logs.push(d.f)
  }
  toString(): string {
    return `AddDeletes(${this.pick})`
  }
}

class BuildIndex extends Step {
  constructor(readonly pick: number, readonly kind: BuildModel['kind']) {
    super()
  }
  #targets(m: Model): { s: SegModel; c: CollModel }[] {
    return liveSegments(m).filter(({ c }) => this.kind !== 'index' || c.liveIndexId !== undefined)
  }
  check(m: Readonly<Model>): boolean {
    return this.#targets(m as Model).length > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    const { s, c } = pickOf(this.#targets(m), this.pick)
    const b = await build(m, r, c, s.id, this.kind)
    const same = (x: BuildModel): boolean => x.kind === b.kind && (b.kind === 'index' ? x.indexId === b.indexId : x.fieldId === b.fieldId)
    s.builds = [...s.builds.filter((x) => !same(x)), b]
  }
  toString(): string {
    return `BuildIndex(${this.pick}, ${this.kind})`
  }
}

class Compact extends Step {
  constructor(readonly pick: number, readonly a: number, readonly b: number) {
    super()
  }
  #colls(m: Model): CollModel[] {
    return [...m.colls.values()].filter((c) => m.flushedOf(c).length >= 2)
  }
  check(m: Readonly<Model>): boolean {
    return this.#colls(m as Model).length > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    const c = pickOf(this.#colls(m), this.pick)
    const segs = m.flushedOf(c)
    const first = pickOf(segs, this.a)
    const rest = segs.filter((s) => s !== first)
    const second = pickOf(rest, this.b)
    const { catalog } = r.manager
    const ids = { collectionId: c.id, partitionId: c.partitionId, segmentId: 800_000 + ++m.seq }
    const pk = await hostFile(m, r, catalog.layout.insertLog({ ...ids, fieldId: c.fields.pk, logId: 1 }), 'binlog')
    const vec = await hostFile(m, r, catalog.layout.insertLog({ ...ids, fieldId: c.fields.vec, logId: 2 }), 'binlog')
    const numRows = first.numRows + second.numRows
    const result = await catalog.compact({
      collection: c.name,
      sources: [first.id, second.id],
      result: { numRows, binlogs: [{ fieldId: c.fields.pk, files: [pk.entry] }, { fieldId: c.fields.vec, files: [vec.entry] }] },
    })
    first.state = 'dropped'
    second.state = 'dropped'
    m.segs.set(result.id, { id: result.id, collectionId: c.id, state: 'flushed', numRows, logs: [pk.f, vec.f], builds: [] })
  }
  toString(): string {
    return `Compact(${this.pick}, ${this.a}, ${this.b})`
  }
}

class DropSegment extends Step {
  constructor(readonly pick: number) {
    super()
  }
  check(m: Readonly<Model>): boolean {
    return liveSegments(m as Model).length > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    const { s } = pickOf(liveSegments(m), this.pick)
    await r.manager.catalog.dropSegment(s.id)
    s.state = 'dropped'
  }
  toString(): string {
    return `DropSegment(${this.pick})`
  }
}

class DropIndex extends Step {
  constructor(readonly pick: number) {
    super()
  }
  #colls(m: Model): CollModel[] {
    return [...m.colls.values()].filter((c) => c.liveIndexId !== undefined)
  }
  check(m: Readonly<Model>): boolean {
    return this.#colls(m as Model).length > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    const c = pickOf(this.#colls(m), this.pick)
    await r.manager.catalog.dropIndex(c.name, c.liveIndexName as string)
    c.liveIndexId = undefined
    c.liveIndexName = undefined
  }
  toString(): string {
    return `DropIndex(${this.pick})`
  }
}

class CreateIndex extends Step {
  constructor(readonly pick: number) {
    super()
  }
  #colls(m: Model): CollModel[] {
    return [...m.colls.values()].filter((c) => c.liveIndexId === undefined)
  }
  check(m: Readonly<Model>): boolean {
    return this.#colls(m as Model).length > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    const c = pickOf(this.#colls(m), this.pick)
    const name = `vec_idx_${++m.seq}`
    const ix = await r.manager.catalog.createIndex(c.name, { fieldName: 'vec', indexName: name, params: {} })
    c.liveIndexId = ix.id
    c.liveIndexName = name
  }
  toString(): string {
    return `CreateIndex(${this.pick})`
  }
}

class DropCollection extends Step {
  constructor(readonly pick: number) {
    super()
  }
  check(m: Readonly<Model>): boolean {
    return m.colls.size > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    const c = pickOf([...m.colls.values()], this.pick)
    await r.manager.catalog.dropCollection(c.name)
    m.colls.delete(c.name)
    for (const s of m.segs.values()) if (s.collectionId === c.id) s.state = 'dropped'
  }
  toString(): string {
    return `DropCollection(${this.pick})`
  }
}

class CreateSnapshot extends Step {
  constructor(readonly pick: number) {
    super()
  }
  check(m: Readonly<Model>): boolean {
    return m.colls.size > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    const c = pickOf([...m.colls.values()], this.pick)
    const name = `s${++m.seq}`
    const expected = m.capture(c, name)
    const info = await r.manager.createSnapshot({ collectionName: c.name, snapshotName: name })
    expect(info).toMatchObject({ state: 'committed', segmentCount: expected.segmentCount, rowCount: expected.rowCount })
    m.snaps.set(name, expected)
  }
  toString(): string {
    return `CreateSnapshot(${this.pick})`
  }
}

class DropSnapshot extends Step {
  #name: string | undefined
  constructor(readonly pick: number) {
    super()
  }
  check(m: Readonly<Model>): boolean {
    return m.snaps.size > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    this.#name = pickOf([...m.snaps.keys()], this.pick)
    await r.manager.dropSnapshot(this.#name)
    m.snaps.delete(this.#name)
  }
  override async recover(m: Model, r: Real): Promise<void> {
    // The drop may have been finished by recovery; then the snapshot is gone.
    const names = new Set((await r.manager.listSnapshots()).map((s) => s.name))
    if (this.#name !== undefined && !names.has(this.#name)) m.snaps.delete(this.#name)
  }
  toString(): string {
    return `DropSnapshot(${this.pick})`
  }
}

/** Checks a completed restore against the snapshot and adds the restored collection to the model. */
async function adoptRestored(m: Model, r: Real, snapName: string, target: string): Promise<void> {
  const snap = m.snaps.get(snapName)
  expect(snap, `restored snapshot ${snapName} is in the model`).toBeDefined()
  const { catalog } = r.manager
  const info = await catalog.getCollection(target)
  const segs = await catalog.listSegments(target)
  expect(segs.every((s) => s.state === 'flushed'), 'restored segments are flushed').toBe(true)
  expect(segs.length, 'restored segment count').toBe(snap?.segmentCount)
  expect(segs.reduce((n, s) => n + s.numRows, 0), 'restored row count').toBe(snap?.rowCount)
  const actual: string[] = []
  for (const s of segs) {
    for (const f of [...s.binlogs, ...s.statslogs, ...s.deltalogs, ...s.bm25logs].flatMap((fb) => fb.files).concat(s.indexes.flatMap((ix) => ix.files), s.textIndexes.flatMap((t) => t.files), s.jsonKeyIndexes.flatMap((j) => j.files))) {
      const bytes = await r.raw.get(f.key)
      expect(bytes, `restored file ${f.key} exists`).toBeDefined()
      const hash = hashOf(bytes as Uint8Array)
      m.hashes.set(f.key, hash)
      actual.push(hash)
    }
  }
  // Every captured file exactly once, byte for byte (file bytes are unique per key).
  expect(actual.sort(), `restore of ${snapName}`).toEqual([...(snap as { files: Map<string, string> }).files.values()].sort())
  const ix = (await catalog.listIndexes(target)).find((i) => i.fieldId === info.schema.fields[1].fieldId)
  m.colls.set(target, m.collFromInfo(info, ix))
  for (const s of segs) m.segs.set(s.id, m.segFromInfo(s))
}

class Restore extends Step {
  #snap: string | undefined
  #target: string | undefined
  constructor(readonly pick: number) {
    super()
  }
  check(m: Readonly<Model>): boolean {
    return m.snaps.size > 0
  }
  async act(m: Model, r: Real): Promise<void> {
    this.#snap = pickOf([...m.snaps.keys()], this.pick)
    this.#target = `r${++m.seq}`
    const job = await r.manager.restoreSnapshot({ snapshotName: this.#snap, targetCollectionName: this.#target })
    // Under crash injection the job may never finish in this process: stop waiting once crashed.
    const waiting = r.manager.waitForRestore(job)
    let timer: NodeJS.Timeout | undefined
    const crashed = new Promise<undefined>((resolve) => {
      timer = setInterval(() => r.plan.crashed && resolve(undefined), 5)
    })
    const done = await Promise.race([waiting, crashed]).finally(() => clearInterval(timer))
    if (done === undefined) {
      waiting.catch(() => undefined)
      throw new Error('crashed while restoring')
    }
    expect(done.state).toBe('completed')
    await adoptRestored(m, r, this.#snap, this.#target)
  }
  override async recover(m: Model, r: Real): Promise<void> {
    if (this.#target === undefined || this.#snap === undefined) return
    const jobs = await r.manager.listRestoreJobs({ collectionName: this.#target })
    for (const job of jobs) {
      const done = await r.manager.waitForRestore(job.jobId).catch((err: unknown) => {
        if (SnapshotError.is(err, 'RESTORE_FAILED')) return undefined
        throw err
      })
      if (done?.state === 'completed' && !m.colls.has(this.#target)) await adoptRestored(m, r, this.#snap, this.#target)
    }
  }
  toString(): string {
    return `Restore(${this.pick})`
  }
}

class Gc extends Step {
  check(): boolean {
    return true
  }
  async act(_m: Model, r: Real): Promise<void> {
    const report = await r.manager.runGc()
    expect(report.dryRun).toBe(false)
  }
  override async after(m: Model, r: Real): Promise<void> {
    await checkNoLeak(m, r)
  }
  toString(): string {
    return 'Gc'
  }
}

class DryRunGc extends Step {
  check(): boolean {
    return true
  }
  async act(_m: Model, r: Real): Promise<void> {
    const dry = await r.manager.runGc({ dryRun: true })
    const real = await r.manager.runGc()
    expect({ ...real, dryRun: true }, 'a dry run reports what the next pass deletes').toEqual(dry)
  }
  override async after(m: Model, r: Real): Promise<void> {
    await checkNoLeak(m, r)
  }
  toString(): string {
    return 'DryRunGc'
  }
}

class Reopen extends Step {
  check(): boolean {
    return true
  }
  async act(_m: Model, r: Real): Promise<void> {
    await r.manager.close()
    await r.open()
  }
  toString(): string {
    return 'Reopen'
  }
}

/** Runs a step with the `n`-th write failing (and every later one, as a dead process). */
class Crash implements Cmd {
  constructor(readonly step: Step, readonly n: number) {}
  check(m: Readonly<Model>): boolean {
    return this.step.check(m)
  }
  async run(m: Model, r: Real): Promise<void> {
    r.plan.armIn(this.n, { mode: 'crash' })
    let failure: unknown
    try {
      await this.step.act(m, r)
    } catch (err) {
      failure = err
    }
    const crashed = r.plan.crashed
    r.plan.disarm()
    if (!crashed) {
      if (failure !== undefined) throw failure
      await this.step.after(m, r)
    } else {
      await r.reopen()
      await this.step.recover(m, r)
      await resync(m, r)
    }
    await checkInvariants(m, r)
  }
  toString(): string {
    return `Crash(${this.step.toString()}, at write ${this.n})`
  }
}

const pick = fc.nat({ max: 1000 })

/** Arbitraries of every command. */
export function commandArbitraries(): fc.Arbitrary<Cmd>[] {
  const steps: fc.Arbitrary<Step>[] = [
    pick.map((p) => new CreateCollection(p)),
    fc.tuple(pick, fc.boolean()).map(([p, ix]) => new WriteSegment(p, ix)),
    pick.map((p) => new AddDeletes(p)),
    fc.tuple(pick, fc.constantFrom<BuildModel['kind']>('index', 'textIndex', 'jsonKeyIndex')).map(([p, k]) => new BuildIndex(p, k)),
    fc.tuple(pick, pick, pick).map(([p, a, b]) => new Compact(p, a, b)),
    pick.map((p) => new DropSegment(p)),
    pick.map((p) => new DropIndex(p)),
    pick.map((p) => new CreateIndex(p)),
    pick.map((p) => new DropCollection(p)),
    pick.map((p) => new CreateSnapshot(p)),
    pick.map((p) => new DropSnapshot(p)),
    pick.map((p) => new Restore(p)),
    fc.constant(new Gc()),
    fc.constant(new DryRunGc()),
    fc.constant(new Reopen()),
  ]
  const crashable: fc.Arbitrary<Step>[] = [
    fc.tuple(pick, fc.boolean()).map(([p, ix]) => new WriteSegment(p, ix)),
    fc.tuple(pick, pick, pick).map(([p, a, b]) => new Compact(p, a, b)),
    pick.map((p) => new DropCollection(p)),
    pick.map((p) => new CreateSnapshot(p)),
    pick.map((p) => new DropSnapshot(p)),
    pick.map((p) => new Restore(p)),
    fc.constant(new Gc()),
    fc.constant(new Reopen()),
  ]
  return [
    ...steps.map((s) => s as fc.Arbitrary<Cmd>),
    // Gc, snapshots and writes are the point: weight them up.
    fc.constant(new Gc()),
    fc.tuple(pick, fc.boolean()).map(([p, ix]) => new WriteSegment(p, ix)),
    pick.map((p) => new CreateSnapshot(p)),
    pick.map((p) => new CreateSnapshot(p)),
    fc.tuple(fc.oneof(...crashable), fc.integer({ min: 1, max: 16 })).map(([s, n]) => new Crash(s, n)),
    fc.tuple(fc.oneof(...crashable), fc.integer({ min: 1, max: 16 })).map(([s, n]) => new Crash(s, n)),
  ]
}

/** The start of every sequence: a collection with three indexed segments and a snapshot of them. */
export function prelude(): Step[] {
  return [new CreateCollection(0), new WriteSegment(0, true), new WriteSegment(0, true), new WriteSegment(0, false), new CreateSnapshot(0)]
}

/** The end of every sequence: drop every snapshot and collection, GC with zero grace: nothing may remain. */
export async function dropEverythingAndCollect(m: Model, r: Real): Promise<void> {
  const { manager } = r
  for (const s of await manager.listSnapshots()) await manager.dropSnapshot(s.name)
  for (const c of await manager.catalog.listCollections()) await manager.catalog.dropCollection(c.name)
  m.snaps.clear()
  m.colls.clear()
  await manager.runGc()
  const left: string[] = []
  for await (const o of r.raw.list('files/')) left.push(o.key)
  for await (const o of r.raw.list('snapshots/')) left.push(o.key)
  expect(left, 'objects left after dropping everything and collecting').toEqual([])
  const records: string[] = []
  for (const prefix of ['c/seg/', 'c/coll-seg/', 'c/index/', 'c/dropped-build/', 'c/coll-dropped/', 's/']) {
    for await (const [key] of r.meta.iterate({ gte: prefix, lt: `${prefix}\u{10FFFF}` })) records.push(key)
  }
  expect(records, 'records left after dropping everything and collecting').toEqual([])
}
