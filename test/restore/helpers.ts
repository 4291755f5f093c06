import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'vitest'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import type { SnapshotManagerOptions } from '../../src/options.js'
import type { CollectionInfo, FieldBinlog, SegmentFile, SegmentInfo } from '../../src/catalog-types.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { prefixRange, type MetaStore } from '../../src/meta/meta-store.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { keys } from '../../src/meta/keys.js'
import { S3ObjectStore } from '../../src/storage/s3-object-store.js'
import { startS3rver, type S3rverServer } from '../helpers/s3rver.js'
import type { CopyOptions, ObjectInfo, ObjectStore } from '../../src/storage/object-store.js'
import type { AbortOptions } from '../../src/types.js'
import { newSegment, seedDocsCollection, seededBytes, type LogKind } from '../helpers/seed.js'

/** A MetaStore and an ObjectStore that outlive the managers opened over them. */
export interface Stores {
  meta: MetaStore
  objects: ObjectStore
  /** A directory for the test's own files. */
  dir: string
  dispose(): Promise<void>
}

/** A backend factory. */
export interface Backend {
  name: string
  make(): Promise<Stores>
}

/** Memory, LevelDB and shared-conditional (expectations checked, as on etcd) metadata, each over a filesystem object store; without syncs (restore tests run ~1.8× faster; durability has its own tests). */
export const fsBackends: Backend[] = [
  {
    name: 'memory + fs',
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'vecsnap-restore-'))
      return { dir, meta: new MemoryMetaStore(), objects: new FsObjectStore({ root: join(dir, 'objects'), fsync: false }), dispose: () => rm(dir, { recursive: true, force: true }) }
    },
  },
  {
    name: 'level + fs',
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'vecsnap-restore-'))
      return {
        dir,
        meta: new LevelMetaStore({ location: join(dir, 'meta'), sync: false }),
        objects: new FsObjectStore({ root: join(dir, 'objects'), fsync: false }),
        dispose: () => rm(dir, { recursive: true, force: true }),
      }
    },
  },
  {
    // Checks every read a transaction recorded in its batch, as etcd does.
    name: 'shared map + fs',
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'vecsnap-restore-'))
      return { dir, meta: new MapMetaStore({ sharedConditionalBatch: true }), objects: new FsObjectStore({ root: join(dir, 'objects'), fsync: false }), dispose: () => rm(dir, { recursive: true, force: true }) }
    },
  },
]

/**
 * Memory metadata over S3 (a local s3rver, one bucket per test). Call `close()` in
 * `afterAll` to stop the server.
 */
export function s3Backend(): Backend & { close(): Promise<void> } {
  let server: Promise<S3rverServer> | undefined
  return {
    name: 'memory + s3',
    async make() {
      server ??= startS3rver()
      const s3 = await server
      const bucket = await s3.createBucket()
      const dir = await mkdtemp(join(tmpdir(), 'vecsnap-restore-s3-'))
      return {
        dir,
        meta: new MemoryMetaStore(),
        objects: new S3ObjectStore({ client: s3.client, bucket, prefix: 'vecsnap' }),
        dispose: () => rm(dir, { recursive: true, force: true }),
      }
    },
    async close() {
      if (server !== undefined) await (await server).stop()
    },
  }
}

/** Opens a manager with the GC loop off and a fast restore tick. */
export async function openManager(meta: MetaStore, objects: ObjectStore, options: Partial<SnapshotManagerOptions> = {}): Promise<SnapshotManager> {
  const manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0, checkIntervalMs: 20, ...options })
  await manager.open()
  return manager
}

/**
 * An ObjectStore wrapper that counts copies per target key and lets a test delay or
 * fail them.
 */
export class WrappedObjects implements ObjectStore {
  readonly inner: ObjectStore
  /** Completed copies, by target key. */
  readonly copies = new Map<string, number>()
  /** Runs before each copy; may wait or throw. */
  beforeCopy: ((from: string, to: string, signal?: AbortSignal) => Promise<void>) | undefined
  /** Every copy that started, in order. */
  readonly started: string[] = []

  constructor(inner: ObjectStore) {
    this.inner = inner
  }

  get capabilities() {
    return this.inner.capabilities
  }

  put(key: string, body: Uint8Array, o?: AbortOptions): Promise<ObjectInfo> {
    return this.inner.put(key, body, o)
  }

  get(key: string, o?: AbortOptions): Promise<Uint8Array | undefined> {
    return this.inner.get(key, o)
  }

  head(key: string, o?: AbortOptions): Promise<ObjectInfo | undefined> {
    return this.inner.head(key, o)
  }

  list(prefix: string, o?: AbortOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, o)
  }

  async copy(from: string, to: string, o?: CopyOptions): Promise<ObjectInfo> {
    this.started.push(to)
    await this.beforeCopy?.(from, to, o?.signal)
    const info = await this.inner.copy(from, to, o)
    this.copies.set(to, (this.copies.get(to) ?? 0) + 1)
    return info
  }

  delete(keys: readonly string[], o?: AbortOptions): Promise<void> {
    return this.inner.delete(keys, o)
  }

  async close(): Promise<void> {
    await this.inner.close?.()
  }

  /** Total completed copies. */
  get copyCount(): number {
    let n = 0
    for (const c of this.copies.values()) n += c
    return n
  }
}

/** Resolves after `ms`, or rejects when `signal` fires. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(t)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

async function putFile(objects: ObjectStore, key: string, size: number, logId?: number): Promise<SegmentFile> {
  const bytes = seededBytes(key, size)
  await objects.put(key, bytes)
  const file: SegmentFile = { key, size, entries: 10, checksum: `sha256:${createHash('sha256').update(bytes).digest('hex')}` }
  if (logId !== undefined) file.logId = logId
  return file
}

/** `docs`-like collection: pk / vec / text / meta fields, partitions `_default` and `p1`, an index on `vec` and one on `text`. */
export async function seedCollection(manager: SnapshotManager, name: string): Promise<CollectionInfo> {
  return seedDocsCollection(manager.catalog, name, {
    dim: 8,
    description: 'restore test',
    shardsNum: 2,
    partitionNames: ['_default', 'p1'],
    properties: { 'collection.ttl.seconds': '60' },
    indexes: [
      { fieldName: 'vec', indexName: 'vec_idx', params: { index_type: 'HNSW', metric_type: 'L2' } },
      { fieldName: 'text', indexName: 'text_idx', params: { index_type: 'INVERTED' } },
    ],
  })
}

/** Options of {@link flushedSegment}. */
export interface SegmentOptions {
  numRows?: number
  partition?: string
  /** Bytes of the vector binlog. @default 256 */
  vecBytes?: number
  /** Index files too. @default true */
  indexes?: boolean
}

let hostSeq = 0

/**
 * A flushed segment with real files of every class: binlogs (one without a log ID, as
 * some hosts write), a statslog, a deltalog, a BM25 log, two vector index files, a
 * scalar index file, a text index and a JSON-key index under host-chosen keys.
 */
export async function flushedSegment(manager: SnapshotManager, objects: ObjectStore, collection: CollectionInfo, o: SegmentOptions = {}): Promise<SegmentInfo> {
  const { catalog } = manager
  const { seg, fieldIds, nextLog } = await newSegment(catalog, collection, o.partition)
  const [pk, vec, text, meta] = fieldIds
  const log = (kind: LogKind, fieldId: number, size: number) => {
    const { key, logId } = nextLog(kind, fieldId)
    return putFile(objects, key, size, logId)
  }
  const host = `files/host/${++hostSeq}-${seg.id}`
  const binlogs: FieldBinlog[] = [
    { fieldId: pk, files: [await log('insertLog', pk, 64), await log('insertLog', pk, 40)] },
    { fieldId: vec, files: [await log('insertLog', vec, o.vecBytes ?? 256)] },
    // A host that keeps its own keys and no log IDs.
    { fieldId: text, files: [await putFile(objects, `${host}/text-binlog`, 48)] },
  ]
  const statslogs: FieldBinlog[] = [{ fieldId: pk, files: [await log('statsLog', pk, 16)] }]
  const deltalogs: FieldBinlog[] = [{ fieldId: pk, files: [await log('deltaLog', pk, 8)] }]
  const bm25logs: FieldBinlog[] = [{ fieldId: text, files: [await log('bm25Log', text, 12)] }]
  await catalog.flushSegment(seg.id, { numRows: o.numRows ?? 100, binlogs, statslogs, deltalogs, bm25logs })
  if (o.indexes !== false) {
    await catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [await putFile(objects, `${host}/hnsw/HNSW_0`, 128), await putFile(objects, `${host}/hnsw/HNSW_META`, 20)] })
    await catalog.addSegmentIndex(seg.id, { indexName: 'text_idx', files: [await putFile(objects, `${host}/inverted/INVERTED`, 30)] })
    await catalog.addTextIndex(seg.id, { fieldId: text, files: [await putFile(objects, `${host}/text/index`, 20)] })
    await catalog.addJsonKeyIndex(seg.id, { fieldId: meta, files: [await putFile(objects, `${host}/json/keys`, 24)] })
  }
  return catalog.getSegment(seg.id)
}

/** Every object key under `prefix`, sorted. */
export async function objectKeys(objects: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = []
  for await (const o of objects.list(prefix)) out.push(o.key)
  return out.sort()
}

/** Every `[key, value]` of a MetaStore under `prefix`. */
export async function metaEntries(meta: MetaStore, prefix = ''): Promise<[string, string][]> {
  const out: [string, string][] = []
  for await (const e of meta.iterate(prefixRange(prefix))) out.push(e)
  return out
}

/** Every file key of a segment. */
export function keysOf(seg: SegmentInfo): string[] {
  return [...segmentFiles(seg)].map((f) => f.file.key)
}

/**
 * Asserts that `restored` holds exactly the files of `source` (segments paired in ID
 * order, lists in order), byte for byte, under new keys, and that its IDs are new.
 */
export async function expectSameFiles(objects: ObjectStore, source: readonly SegmentInfo[], restored: readonly SegmentInfo[]): Promise<void> {
  const src = [...source].sort((a, b) => a.id - b.id)
  const dst = [...restored].sort((a, b) => a.id - b.id)
  expect(dst.map((s) => s.numRows)).toEqual(src.map((s) => s.numRows))
  expect(dst.map((s) => s.level)).toEqual(src.map((s) => s.level))
  const srcIds = new Set(src.map((s) => s.id))
  for (const s of dst) expect(srcIds.has(s.id)).toBe(false)
  for (let i = 0; i < src.length; i++) {
    const a = [...segmentFiles(src[i])]
    const b = [...segmentFiles(dst[i])]
    expect(b.map((f) => [f.cls, f.fieldId, f.indexId, f.file.size, f.file.checksum])).toEqual(a.map((f) => [f.cls, f.fieldId, f.indexId, f.file.size, f.file.checksum]))
    for (let j = 0; j < a.length; j++) {
      expect(b[j].file.key).not.toBe(a[j].file.key)
      const [x, y] = await Promise.all([objects.get(a[j].file.key), objects.get(b[j].file.key)])
      expect(y, `target ${b[j].file.key}`).toBeDefined()
      expect(Buffer.from(y as Uint8Array).equals(Buffer.from(x as Uint8Array)), `${b[j].file.key} equals ${a[j].file.key}`).toBe(true)
    }
  }
}

/** What a restore job recorded as copied: single files, and whole segments (by target segment ID) through their markers. */
export interface RecordedCopies {
  files: Set<string>
  segmentIds: Set<number>
}

/** Reads the completion records of job `jobId` (the store must be open). */
export async function recordedCopies(meta: MetaStore, jobId: number): Promise<RecordedCopies> {
  const job = JSON.parse((await meta.get(keys.restoreJob(jobId))) as string) as { segmentIdBase: number }
  const filePrefix = keys.restoreFileDonePrefix(jobId)
  const segPrefix = keys.restoreSegmentDonePrefix(jobId)
  const files = new Set((await metaEntries(meta, filePrefix)).map(([k]) => k.slice(filePrefix.length)))
  const segmentIds = new Set((await metaEntries(meta, segPrefix)).map(([k]) => job.segmentIdBase + Number(k.slice(segPrefix.length))))
  return { files, segmentIds }
}

/** Target keys `recorded` covers, given the restored segments. */
export function recordedKeys(recorded: RecordedCopies, restored: readonly SegmentInfo[]): Set<string> {
  const out = new Set(recorded.files)
  for (const s of restored) if (recorded.segmentIds.has(s.id)) for (const k of keysOf(s)) out.add(k)
  return out
}
