import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect } from 'vitest'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import type { SnapshotManagerOptions } from '../../src/options.js'
import type { CollectionInfo, FieldBinlog, SegmentFile, SegmentInfo } from '../../src/catalog-types.js'
import { keys } from '../../src/meta/keys.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { prefixRange, type MetaStore } from '../../src/meta/meta-store.js'
import { Transactor } from '../../src/meta/transaction.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { TypedEmitter, type SnapshotManagerEvents } from '../../src/events.js'
import { resolveOptions } from '../../src/options.js'
import type { ManagerContext } from '../../src/context.js'
import { SnapshotStore } from '../../src/snapshot/snapshot-store.js'
import type { SnapshotRecord } from '../../src/snapshot/snapshot-record.js'
import { contentHash, SnapshotList } from '../../src/snapshot/snapshot-list.js'
import { newSegment, seedDocsCollection, type LogKind } from '../helpers/seed.js'

/** A MetaStore and an ObjectStore that outlive the managers opened over them. */
export interface Stores {
  name: string
  meta: MetaStore
  objects: ObjectStore
  /** Removes temporary directories. */
  dispose(): Promise<void>
}

/** The backends every lifecycle test runs on. */
export const backends: { name: string; make(): Promise<Stores> }[] = [
  {
    name: 'memory + fs',
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'vecsnap-snap-'))
      return {
        name: 'memory + fs',
        meta: new MemoryMetaStore(),
        objects: new FsObjectStore({ root: join(dir, 'objects') }),
        dispose: () => rm(dir, { recursive: true, force: true }),
      }
    },
  },
  {
    name: 'level + fs',
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'vecsnap-snap-'))
      return {
        name: 'level + fs',
        meta: new LevelMetaStore({ location: join(dir, 'meta') }),
        objects: new FsObjectStore({ root: join(dir, 'objects') }),
        dispose: () => rm(dir, { recursive: true, force: true }),
      }
    },
  },
  {
    name: 'shared map + fs',
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'vecsnap-snap-'))
      return {
        name: 'shared map + fs',
        meta: new MapMetaStore({ sharedConditionalBatch: true }),
        objects: new FsObjectStore({ root: join(dir, 'objects') }),
        dispose: () => rm(dir, { recursive: true, force: true }),
      }
    },
  },
]

/** A fake clock: every call returns a later millisecond unless frozen. */
export class Clock {
  t = 1_767_225_600_000
  frozen = false
  now = (): number => (this.frozen ? this.t : ++this.t)
}

/** Opens a manager over `stores` (GC loop off). */
export async function openManager(meta: MetaStore, objects: ObjectStore, options: Partial<SnapshotManagerOptions> = {}): Promise<SnapshotManager> {
  const manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0, ...options })
  await manager.open()
  return manager
}

/**
 * A second SnapshotStore over the raw stores, for the methods the manager does not expose
 * (`load`, `referencedFiles`, `pinnedIds`). Use it for reads only.
 */
export function readerStore(manager: SnapshotManager, meta: MetaStore, objects: ObjectStore): SnapshotStore {
  const ctx: ManagerContext = {
    meta,
    objects,
    transactor: new Transactor(meta),
    catalog: manager.catalog,
    options: resolveOptions({ meta, objects }),
    events: new TypedEmitter<SnapshotManagerEvents>(),
    now: Date.now,
  }
  return new SnapshotStore(ctx, { isInUse: async () => false })
}

/** Bytes of a seeded file: deterministic per key, `size` long. */
export function fileBytes(key: string, size: number): Uint8Array {
  const out = Buffer.alloc(size)
  const seed = createHash('sha256').update(key).digest()
  for (let i = 0; i < size; i++) out[i] = seed[i % seed.length]
  return out
}

/** A file written through `objects`, with a sha256 checksum unless told otherwise. */
export async function putFile(objects: ObjectStore, key: string, size: number, checksum: 'sha256' | 'md5' | 'crc32c' | 'none' = 'sha256'): Promise<SegmentFile> {
  const bytes = fileBytes(key, size)
  await objects.put(key, bytes)
  const file: SegmentFile = { key, size }
  if (checksum === 'sha256' || checksum === 'md5') file.checksum = `${checksum}:${createHash(checksum).update(bytes).digest('hex')}`
  else if (checksum === 'crc32c') file.checksum = 'crc32c:deadbeef'
  return file
}

/** Creates `name` with pk / vec / text / meta fields, two partitions and an index on `vec`. */
export async function seedCollection(manager: SnapshotManager, name: string): Promise<CollectionInfo> {
  return seedDocsCollection(manager.catalog, name, {
    dim: 8,
    description: 'test collection',
    shardsNum: 2,
    partitionNames: ['_default', 'p1'],
    properties: { 'collection.ttl.seconds': '0' },
  })
}

/** Options of {@link flushedSegment}. */
export interface SegmentOptions {
  numRows?: number
  partition?: string
  /** Also add a `vec_idx` index, a text index and a JSON-key index. @default true */
  indexes?: boolean
}

/** Allocates and flushes a segment with real files (binlogs, statslog, deltalog, bm25 log, and indexes). */
export async function flushedSegment(manager: SnapshotManager, objects: ObjectStore, collection: CollectionInfo, o: SegmentOptions = {}): Promise<SegmentInfo> {
  const { catalog } = manager
  const { seg, fieldIds, nextLog } = await newSegment(catalog, collection, o.partition)
  const [pk, vec, text, meta] = fieldIds
  const log = (kind: LogKind, fieldId: number, size: number, sum: 'sha256' | 'md5' | 'crc32c' | 'none' = 'sha256') => putFile(objects, nextLog(kind, fieldId).key, size, sum)
  const binlogs: FieldBinlog[] = [
    { fieldId: pk, files: [await log('insertLog', pk, 64), await log('insertLog', pk, 32, 'md5')] },
    { fieldId: vec, files: [await log('insertLog', vec, 256, 'none')] },
    { fieldId: text, files: [await log('insertLog', text, 48, 'crc32c')] },
  ]
  const statslogs: FieldBinlog[] = [{ fieldId: pk, files: [await log('statsLog', pk, 16)] }]
  const deltalogs: FieldBinlog[] = [{ fieldId: pk, files: [await log('deltaLog', pk, 8)] }]
  const bm25logs: FieldBinlog[] = [{ fieldId: text, files: [await log('bm25Log', text, 12)] }]
  await catalog.flushSegment(seg.id, { numRows: o.numRows ?? 100, binlogs, statslogs, deltalogs, bm25logs })
  if (o.indexes !== false) {
    await catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [await putFile(objects, `files/index_files/host/${seg.id}/HNSW_0`, 128)] })
    await catalog.addTextIndex(seg.id, { fieldId: text, files: [await putFile(objects, `files/text_log/host/${seg.id}/index`, 20)] })
    await catalog.addJsonKeyIndex(seg.id, { fieldId: meta, files: [await putFile(objects, `files/json_key_index_log/host/${seg.id}/keys`, 24)] })
  }
  return catalog.getSegment(seg.id)
}

/** Every `[key, value]` of the MetaStore under `prefix`. */
export async function metaEntries(meta: MetaStore, prefix: string): Promise<[string, string][]> {
  const out: [string, string][] = []
  for await (const entry of meta.iterate(prefixRange(prefix))) out.push(entry)
  return out
}

/** Every MetaStore entry under `s/` but the per-collection counters (which outlive the snapshots). */
export async function snapshotEntries(meta: MetaStore): Promise<[string, string][]> {
  return (await metaEntries(meta, 's/')).filter(([k]) => !k.startsWith('s/coll-snap-ver/'))
}

/** Every snapshot record, any state. */
export async function snapshotRecords(meta: MetaStore): Promise<SnapshotRecord[]> {
  return (await metaEntries(meta, keys.snapshotPrefix)).map(([, v]) => JSON.parse(v) as SnapshotRecord)
}

/** Every object key under `prefix`. */
export async function objectKeys(objects: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const o of objects.list(prefix)) out.push(o.key)
  return out.sort()
}

/**
 * Asserts the snapshot area is consistent: only committed records, each small (≤ 4 KiB);
 * name keys and the collection index match the records; each record's list exists with the
 * hash it names, and every manifest a list names exists with the size and hash the list
 * records; objects under `snapshots/` are exactly the committed snapshots' metadata JSON,
 * lists and listed manifests. Returns a list of problems (empty = consistent).
 */
export async function snapshotProblems(meta: MetaStore, objects: ObjectStore): Promise<string[]> {
  const problems: string[] = []
  const records = await snapshotRecords(meta)
  const byId = new Map(records.map((r) => [r.id, r]))
  const referenced = new Set<string>()
  for (const [key, value] of await metaEntries(meta, keys.snapshotPrefix)) {
    if (Buffer.byteLength(value) > 4096) problems.push(`record ${key} is ${Buffer.byteLength(value)} bytes`)
  }
  for (const r of records) {
    if (r.state !== 'committed') problems.push(`snapshot ${r.id} (${r.name}) is ${r.state}`)
    if ((await meta.get(keys.snapshotName(r.name))) !== String(r.id)) problems.push(`name ${r.name} does not point at ${r.id}`)
    if ((await meta.get(keys.collectionSnapshot(r.collectionId, r.id))) === undefined) problems.push(`snapshot ${r.id} is not in its collection's index`)
    referenced.add(r.metadataKey)
    if (r.list === undefined) {
      problems.push(`snapshot ${r.id} has no list`)
      continue
    }
    referenced.add(r.list.key)
    const bytes = await objects.get(r.list.key)
    if (bytes === undefined) continue
    if (contentHash(bytes) !== r.list.hash || bytes.byteLength !== r.list.size) problems.push(`snapshot ${r.id} names another list than ${r.list.key}`)
    const list = new SnapshotList(bytes, r.list.key)
    for (let i = 0; i < list.count; i++) {
      const key = list.manifestKey(i)
      referenced.add(key)
      const m = await objects.get(key)
      if (m === undefined) continue
      if (list.manifestSizes[i] !== m.byteLength) problems.push(`snapshot ${r.id} records size ${list.manifestSizes[i]} for ${key} of ${m.byteLength} bytes`)
      // The hash is the sync marker, the last 16 bytes.
      if (list.hashes[i] !== Buffer.from(m.subarray(m.byteLength - 16)).toString('base64url')) problems.push(`snapshot ${r.id} records a wrong hash for ${key}`)
    }
  }
  for (const [key, value] of await metaEntries(meta, 's/name/')) {
    if (!byId.has(Number(value))) problems.push(`name key ${key} points at missing snapshot ${value}`)
  }
  for (const [key] of await metaEntries(meta, 's/coll-snap/')) {
    const [collectionId, snap] = key.slice('s/coll-snap/'.length).split('/').map(Number)
    if (byId.get(snap)?.collectionId !== collectionId) problems.push(`stale collection index ${key}`)
  }
  const stored = await objectKeys(objects, 'snapshots/')
  for (const k of stored) if (!referenced.has(k)) problems.push(`orphaned snapshot object ${k}`)
  for (const k of referenced) if (!stored.includes(k)) problems.push(`missing snapshot object ${k}`)
  return problems
}

/** The list object of a snapshot record, decoded. */
export async function readRecordList(objects: ObjectStore, r: SnapshotRecord): Promise<SnapshotList> {
  const bytes = await objects.get(r.list?.key ?? '')
  if (bytes === undefined) throw new Error(`snapshot ${r.id} has no list object`)
  return new SnapshotList(bytes, r.list?.key ?? '')
}

/** The standard test world: collection `docs` with three flushed segments (one in partition `p1`, one without indexes). */
export interface World {
  stores: Stores
  clock: Clock
  manager: SnapshotManager
  coll: CollectionInfo
  segs: SegmentInfo[]
}

/** Builds a {@link World} on a backend. */
export async function makeWorld(backend: { make(): Promise<Stores> }): Promise<World> {
  const stores = await backend.make()
  const clock = new Clock()
  const manager = await openManager(stores.meta, stores.objects, { now: clock.now })
  const coll = await seedCollection(manager, 'docs')
  const segs = [
    await flushedSegment(manager, stores.objects, coll, { numRows: 100 }),
    await flushedSegment(manager, stores.objects, coll, { numRows: 250, partition: 'p1' }),
    await flushedSegment(manager, stores.objects, coll, { numRows: 7, indexes: false }),
  ]
  return { stores, clock, manager, coll, segs }
}

/**
 * Builds a fresh {@link World} on `backend` before each test of the enclosing `describe`,
 * and closes its manager and disposes its stores after. The returned object is refilled
 * before each test; a test that opens another manager assigns it to `manager`, so the
 * teardown closes that one.
 */
export function worldPerTest(backend: { make(): Promise<Stores> }): World {
  const w = {} as World
  beforeEach(async () => {
    Object.assign(w, await makeWorld(backend))
  })
  afterEach(async () => {
    await w.manager.close()
    await w.stores.dispose()
  })
  return w
}

/** Matches a SnapshotError with `code`. */
export function code(c: string): unknown {
  return expect.objectContaining({ name: 'SnapshotError', code: c })
}
