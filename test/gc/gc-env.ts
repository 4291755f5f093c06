import { mkdtemp, rm, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import type { SnapshotManagerOptions } from '../../src/options.js'
import type { CollectionInfo, FieldBinlog, SegmentFile, SegmentInfo } from '../../src/catalog-types.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { MetaStore } from '../../src/meta/meta-store.js'
import { segmentFiles, type FileClass } from '../../src/meta/segment-files.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { newSegment, seedDocsCollection, seededBytes, type LogKind } from '../helpers/seed.js'

/**
 * A test clock: the real time plus an offset (so files written now are not in its
 * future), or a fixed instant once `set()`.
 */
export class Clock {
  offset = 0
  fixed: number | undefined
  now = (): number => this.fixed ?? Date.now() + this.offset
  /** Moves the clock by `ms` (negative goes back). */
  advance(ms: number): void {
    if (this.fixed === undefined) this.offset += ms
    else this.fixed += ms
  }
  /** Freezes the clock at `t`. */
  set(t: number): void {
    this.fixed = t
  }
}

/** A manager over a MemoryMetaStore and an FsObjectStore in a temporary directory. */
export interface GcEnv {
  dir: string
  root: string
  meta: MetaStore
  objects: ObjectStore
  clock: Clock
  manager: SnapshotManager
  /** Closes the manager and opens a new one over the same stores. */
  reopen(options?: Partial<SnapshotManagerOptions>): Promise<SnapshotManager>
  dispose(): Promise<void>
}

/**
 * Opens a manager with every grace at 0 and the GC loop off, unless told otherwise, over
 * a FsObjectStore in a temporary directory (`wrap` may put a counting or gating store in
 * front of it). `dispose()` removes the directory.
 */
export async function gcEnv(options: Partial<SnapshotManagerOptions> = {}, wrap?: (objects: ObjectStore) => ObjectStore): Promise<GcEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'vecsnap-gc-'))
  const root = join(dir, 'objects')
  const meta = new MemoryMetaStore()
  const fsObjects = new FsObjectStore({ root, fsync: false })
  const objects = wrap === undefined ? fsObjects : wrap(fsObjects)
  const clock = new Clock()
  const make = async (o: Partial<SnapshotManagerOptions>): Promise<SnapshotManager> => {
    const m = new SnapshotManager({ meta, objects, gcIntervalMs: 0, dropGraceMs: 0, orphanGraceMs: 0, checkIntervalMs: 20, now: clock.now, ...options, ...o })
    await m.open()
    return m
  }
  const env: GcEnv = {
    dir,
    root,
    meta,
    objects,
    clock,
    manager: await make({}),
    async reopen(o = {}) {
      await env.manager.close()
      env.manager = await make(o)
      return env.manager
    },
    async dispose() {
      await env.manager.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
  return env
}

/** Writes a file through the object store and returns its catalog entry. */
export async function put(objects: ObjectStore, key: string, size = 32): Promise<SegmentFile> {
  await objects.put(key, seededBytes(key, size))
  return { key, size }
}

/** Creates `name` with pk / vec / text / meta fields and an index `vec_idx` on `vec`. */
export async function collection(manager: SnapshotManager, name = 'docs'): Promise<CollectionInfo> {
  return seedDocsCollection(manager.catalog, name, { dim: 4 })
}

let hostBuild = 1_000_000

/** Options of {@link segment}. */
export interface SegmentOptions {
  /** Add a `vec_idx` build, a text index and a JSON-key index. @default true */
  indexes?: boolean
  numRows?: number
}

/**
 * A flushed segment with one file of every class: binlogs, statslog, deltalog, bm25 log,
 * an index file, a text index file and a JSON-key index file, all written for real.
 */
export async function segment(manager: SnapshotManager, objects: ObjectStore, c: CollectionInfo, o: SegmentOptions = {}): Promise<SegmentInfo> {
  const { catalog } = manager
  const { seg, fieldIds, nextLog } = await newSegment(catalog, c)
  const [pk, vec, text] = fieldIds
  const log = (kind: LogKind, fieldId: number) => put(objects, nextLog(kind, fieldId).key)
  const binlogs: FieldBinlog[] = [
    { fieldId: pk, files: [await log('insertLog', pk)] },
    { fieldId: vec, files: [await log('insertLog', vec)] },
  ]
  await catalog.flushSegment(seg.id, {
    numRows: o.numRows ?? 10,
    binlogs,
    statslogs: [{ fieldId: pk, files: [await log('statsLog', pk)] }],
    deltalogs: [{ fieldId: pk, files: [await log('deltaLog', pk)] }],
    bm25logs: [{ fieldId: text, files: [await log('bm25Log', text)] }],
  })
  if (o.indexes !== false) await indexSegment(manager, objects, c, seg.id)
  return catalog.getSegment(seg.id)
}

/** (Re)builds `vec_idx`, the text index and the JSON-key index of a segment, with fresh files. */
export async function indexSegment(manager: SnapshotManager, objects: ObjectStore, c: CollectionInfo, segmentId: number, which: ('index' | 'textIndex' | 'jsonKeyIndex')[] = ['index', 'textIndex', 'jsonKeyIndex']): Promise<void> {
  const { catalog } = manager
  const seg = await catalog.getSegment(segmentId)
  const [, , text, meta] = c.schema.fields.map((f) => f.fieldId)
  const k = { buildId: ++hostBuild, version: 1, collectionId: c.id, partitionId: seg.partitionId, segmentId }
  if (which.includes('index')) await catalog.addSegmentIndex(segmentId, { indexName: 'vec_idx', files: [await put(objects, catalog.layout.indexFile({ ...k, fileName: 'HNSW' }))] })
  if (which.includes('textIndex')) await catalog.addTextIndex(segmentId, { fieldId: text, files: [await put(objects, catalog.layout.textIndex({ ...k, fieldId: text, fileName: 'text' }))] })
  if (which.includes('jsonKeyIndex')) await catalog.addJsonKeyIndex(segmentId, { fieldId: meta, files: [await put(objects, catalog.layout.jsonKeyIndex({ ...k, fieldId: meta, fileName: 'keys' }))] })
}

/** The keys of a segment's files of one class. */
export function keysOf(seg: SegmentInfo, cls?: FileClass): string[] {
  return [...segmentFiles(seg)].filter((f) => cls === undefined || f.cls === cls).map((f) => f.file.key)
}

/** Every object key under `prefix`, sorted. */
export async function list(objects: ObjectStore, prefix = 'files/'): Promise<string[]> {
  const out: string[] = []
  for await (const o of objects.list(prefix)) out.push(o.key)
  return out.sort()
}

/** True when `key` exists. */
export async function exists(objects: ObjectStore, key: string): Promise<boolean> {
  return (await objects.head(key)) !== undefined
}

/** Sets a stored file's mtime (FsObjectStore reports it as `lastModified`). */
export async function setMtime(root: string, key: string, epochMs: number): Promise<void> {
  const t = new Date(epochMs)
  await utimes(join(root, key), t, t)
}

/** Every file class of a segment. */
export const FILE_CLASSES: FileClass[] = ['binlog', 'statslog', 'deltalog', 'bm25log', 'index', 'textIndex', 'jsonKeyIndex']
