import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'vitest'
import type { CollectionInfo, SegmentInfo } from '../../src/catalog-types.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { MetaStore } from '../../src/meta/meta-store.js'
import { segmentFiles, type FileClass } from '../../src/meta/segment-files.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { CrashPlan, crashingMetaStore, crashingObjectStore } from '../helpers/crash-store.js'

/**
 * The whole-system model for the GC property tests: what the host recorded in the
 * catalog (collections, segments with their files) and what each committed snapshot
 * captured (every file with the hash of its bytes). The real side is a manager over a
 * MemoryMetaStore and an FsObjectStore, both behind a crash-injecting wrapper.
 */

/** Hex sha256 of bytes. */
export function hashOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Deterministic bytes of a host-written file: depend on its key only (keys are never reused). */
export function bytesFor(key: string): Uint8Array {
  const seed = createHash('sha256').update(key).digest()
  const size = 8 + (seed[0] % 40)
  const out = Buffer.alloc(size)
  for (let i = 0; i < size; i++) out[i] = seed[i % seed.length] ^ i
  return out
}

/** One file the model expects, with the hash of its bytes. */
export interface FileModel {
  key: string
  cls: FileClass
  hash: string
}

/** One index, text or JSON-key build of a segment. */
export interface BuildModel {
  kind: 'index' | 'textIndex' | 'jsonKeyIndex'
  buildId: number
  /** Index ID (`index` builds). */
  indexId?: number
  /** Field ID (text / JSON-key builds). */
  fieldId?: number
  files: FileModel[]
}

/** A segment as the model knows it. */
export interface SegModel {
  id: number
  collectionId: number
  state: 'flushed' | 'dropped'
  numRows: number
  /** Binlogs, statslogs, deltalogs and bm25 logs. */
  logs: FileModel[]
  builds: BuildModel[]
}

/** A collection as the model knows it. */
export interface CollModel {
  name: string
  id: number
  partitionId: number
  fields: { pk: number; vec: number; text: number; meta: number }
  /** ID of the live `vec` index, if any. */
  liveIndexId?: number
  /** Index name of the live `vec` index. */
  liveIndexName?: string
}

/** What a committed snapshot captured. */
export interface SnapModel {
  name: string
  collection: string
  segmentCount: number
  rowCount: number
  /** Every captured file: key → hash of its bytes. */
  files: Map<string, string>
  segmentIds: Set<number>
}

/** The model. */
export class Model {
  readonly colls = new Map<string, CollModel>()
  readonly segs = new Map<number, SegModel>()
  readonly snaps = new Map<string, SnapModel>()
  /** Expected hash of every key ever written or restored (keys are immutable). */
  readonly hashes = new Map<string, string>()
  /** Counter for unique names and host build IDs. */
  seq = 0

  /** Files of a segment that are live in its collection (builds of dropped indexes are not). */
  liveFilesOf(s: SegModel, c: CollModel): FileModel[] {
    return [...s.logs, ...s.builds.filter((b) => b.kind !== 'index' || b.indexId === c.liveIndexId).flatMap((b) => b.files)]
  }

  /** Flushed segments of a live collection. */
  flushedOf(c: CollModel): SegModel[] {
    return [...this.segs.values()].filter((s) => s.collectionId === c.id && s.state === 'flushed').sort((a, b) => a.id - b.id)
  }

  /** Every live file: key → hash. */
  liveFiles(): Map<string, string> {
    const out = new Map<string, string>()
    for (const c of this.colls.values()) for (const s of this.flushedOf(c)) for (const f of this.liveFilesOf(s, c)) out.set(f.key, f.hash)
    return out
  }

  /** Objects a GC pass with zero grace may leave under `files/`. */
  retainable(): Set<string> {
    const out = new Set(this.liveFiles().keys())
    const pinned = new Set<number>()
    for (const snap of this.snaps.values()) {
      for (const k of snap.files.keys()) out.add(k)
      for (const id of snap.segmentIds) pinned.add(id)
    }
    // A dropped segment a snapshot pins is kept whole.
    for (const s of this.segs.values()) {
      if (s.state === 'dropped' && pinned.has(s.id)) for (const f of [...s.logs, ...s.builds.flatMap((b) => b.files)]) out.add(f.key)
    }
    return out
  }

  /** What a snapshot of `c` captures now. */
  capture(c: CollModel, name: string): SnapModel {
    const segs = this.flushedOf(c)
    const files = new Map<string, string>()
    for (const s of segs) for (const f of this.liveFilesOf(s, c)) files.set(f.key, f.hash)
    return {
      name,
      collection: c.name,
      segmentCount: segs.length,
      rowCount: segs.reduce((n, s) => n + s.numRows, 0),
      files,
      segmentIds: new Set(segs.map((s) => s.id)),
    }
  }

  /** Records a segment from its catalog record (after a flush, a restore or a crash). */
  segFromInfo(info: SegmentInfo): SegModel {
    const file = (key: string, cls: FileClass): FileModel => {
      let hash = this.hashes.get(key)
      if (hash === undefined) this.hashes.set(key, (hash = hashOf(bytesFor(key))))
      return { key, cls, hash }
    }
    const logs: FileModel[] = []
    const builds: BuildModel[] = []
    for (const f of segmentFiles(info)) {
      if (f.cls === 'index' || f.cls === 'textIndex' || f.cls === 'jsonKeyIndex') continue
      logs.push(file(f.file.key, f.cls))
    }
    for (const ix of info.indexes) builds.push({ kind: 'index', buildId: ix.buildId, indexId: ix.indexId, files: ix.files.map((f) => file(f.key, 'index')) })
    for (const t of info.textIndexes) builds.push({ kind: 'textIndex', buildId: t.buildId, fieldId: t.fieldId, files: t.files.map((f) => file(f.key, 'textIndex')) })
    for (const j of info.jsonKeyIndexes) builds.push({ kind: 'jsonKeyIndex', buildId: j.buildId, fieldId: j.fieldId, files: j.files.map((f) => file(f.key, 'jsonKeyIndex')) })
    return { id: info.id, collectionId: info.collectionId, state: info.state === 'dropped' ? 'dropped' : 'flushed', numRows: info.numRows, logs, builds }
  }

  /** Records a collection from its catalog record. */
  collFromInfo(info: CollectionInfo, liveIndex?: { id: number; name: string }): CollModel {
    const [pk, vec, text, meta] = info.schema.fields.map((f) => f.fieldId)
    return { name: info.name, id: info.id, partitionId: info.partitions[0].id, fields: { pk, vec, text, meta }, liveIndexId: liveIndex?.id, liveIndexName: liveIndex?.name }
  }
}

/** The system under test. */
export class Real {
  readonly plan = new CrashPlan()
  readonly meta: MetaStore = new MemoryMetaStore()
  readonly raw: ObjectStore
  /** The store the manager and the host use: counts writes for crash injection. */
  readonly objects: ObjectStore
  manager!: SnapshotManager
  readonly dir: string

  private constructor(dir: string) {
    this.dir = dir
    this.raw = new FsObjectStore({ root: join(dir, 'objects') })
    this.objects = crashingObjectStore(this.raw, this.plan)
  }

  /** A fresh system in a temporary directory. */
  static async create(): Promise<Real> {
    const real = new Real(await mkdtemp(join(tmpdir(), 'vecsnap-prop-')))
    await real.open()
    return real
  }

  async open(): Promise<void> {
    this.manager = new SnapshotManager({
      meta: crashingMetaStore(this.meta, this.plan),
      objects: this.objects,
      gcIntervalMs: 0,
      dropGraceMs: 0,
      orphanGraceMs: 0,
      checkIntervalMs: 10,
    })
    await this.manager.open()
  }

  /** Closes the manager (as after a crash: failures ignored) and opens a new one over the same stores. */
  async reopen(): Promise<void> {
    await this.manager.close().catch(() => undefined)
    await this.open()
  }

  /** Writes a host file and returns its model. */
  async write(model: Model, key: string, cls: FileClass): Promise<FileModel> {
    const bytes = bytesFor(key)
    await this.objects.put(key, bytes)
    const hash = hashOf(bytes)
    model.hashes.set(key, hash)
    return { key, cls, hash }
  }

  async dispose(): Promise<void> {
    this.plan.disarm()
    await this.manager.close().catch(() => undefined)
    await rm(this.dir, { recursive: true, force: true })
  }
}

/** Every object under `prefix`. */
export async function listKeys(objects: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const o of objects.list(prefix)) out.push(o.key)
  return out.sort()
}

/** Reads each object once per check: many snapshots share files. */
class ObjectHashes {
  readonly #objects: ObjectStore
  readonly #hashes = new Map<string, Promise<string | undefined>>()

  constructor(objects: ObjectStore) {
    this.#objects = objects
  }

  hash(key: string): Promise<string | undefined> {
    let h = this.#hashes.get(key)
    if (h === undefined) this.#hashes.set(key, (h = this.#objects.get(key).then((b) => (b === undefined ? undefined : hashOf(b)))))
    return h
  }

  /** Asserts every `key → hash` exists with those bytes. */
  async expect(files: Map<string, string>, what: string): Promise<void> {
    const entries = [...files]
    const actual = await Promise.all(entries.map(([key]) => this.hash(key)))
    entries.forEach(([key, hash], i) => {
      expect(actual[i], `${what}: ${key} is missing`).toBeDefined()
      expect(actual[i], `${what}: ${key} has other bytes`).toBe(hash)
    })
  }
}

/**
 * Invariants after every step:
 * - every file every committed snapshot captured exists with its bytes, and the
 *   committed snapshots are exactly the model's;
 * - every live file exists with its bytes;
 * - the catalog's flushed segments and their live files are the model's.
 */
export async function checkInvariants(model: Model, real: Real): Promise<void> {
  const { manager } = real
  const objects = new ObjectHashes(real.raw)
  const listed = await manager.listSnapshots()
  expect(listed.map((s) => s.name).sort(), 'committed snapshots').toEqual([...model.snaps.keys()].sort())
  for (const info of listed) {
    const snap = model.snaps.get(info.name) as SnapModel
    expect({ segmentCount: info.segmentCount, rowCount: info.rowCount }, `snapshot ${info.name}`).toEqual({ segmentCount: snap.segmentCount, rowCount: snap.rowCount })
    await objects.expect(snap.files, `snapshot ${info.name}`)
  }
  await objects.expect(model.liveFiles(), 'live file')
  const collections = await manager.catalog.listCollections()
  expect(collections.map((c) => c.name).sort(), 'collections').toEqual([...model.colls.keys()].sort())
  for (const c of model.colls.values()) {
    const segs = await manager.catalog.listSegments(c.name, { states: ['flushed'] })
    const actual = segs.map((s) => [s.id, model.liveFilesOf(model.segFromInfo(s), c).map((f) => f.key).sort()])
    const expected = model.flushedOf(c).map((s) => [s.id, model.liveFilesOf(s, c).map((f) => f.key).sort()])
    expect(actual, `segments of ${c.name}`).toEqual(expected)
  }
}

/** After a GC pass with zero grace: nothing outside what the model may retain is left under `files/`. */
export async function checkNoLeak(model: Model, real: Real): Promise<void> {
  const retainable = model.retainable()
  const leaked = (await listKeys(real.raw, 'files/')).filter((k) => !retainable.has(k))
  expect(leaked, 'objects GC left behind').toEqual([])
}

/**
 * Re-reads the catalog after a crash, whose outcome is ambiguous: collections, their
 * live index and their segments (flushed and dropped) become what the catalog says.
 * Snapshots stay the model's; the caller reconciles the one the crashed step touched.
 */
export async function resync(model: Model, real: Real): Promise<void> {
  const { catalog } = real.manager
  const collections = await catalog.listCollections()
  const names = new Set(collections.map((c) => c.name))
  for (const c of [...model.colls.values()]) {
    if (names.has(c.name)) continue
    model.colls.delete(c.name)
    for (const s of model.segs.values()) if (s.collectionId === c.id) s.state = 'dropped'
  }
  for (const info of collections) {
    const ix = (await catalog.listIndexes(info.name)).find((i) => i.fieldId === info.schema.fields[1].fieldId)
    model.colls.set(info.name, model.collFromInfo(info, ix))
    for (const s of await catalog.listSegments(info.name)) {
      if (s.state === 'growing') continue
      model.segs.set(s.id, model.segFromInfo(s))
    }
  }
}
