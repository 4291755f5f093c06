import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect } from 'vitest'
import { Catalog } from '../../src/meta/catalog.js'
import type { CollectionInfo, CreateCollectionRequest, FieldBinlog, SegmentFile } from '../../src/catalog-types.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { MetaBatchOptions, MetaOperation, MetaStore } from '../../src/meta/meta-store.js'
import { DelegatingMetaStore } from '../helpers/delegating-meta-store.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'

/** A MetaStore under test, with a way to reopen it (a new instance over the same data). */
export interface TestStore {
  meta: MetaStore
  /** Closes `meta` and opens a new store over the same data. */
  reopen(): Promise<MetaStore>
  dispose(): Promise<void>
}

/** A store that keeps its data in memory across a close and an open. */
async function inProcess(meta: MetaStore): Promise<TestStore> {
  await meta.open()
  return {
    meta,
    async reopen() {
      await meta.close()
      await meta.open()
      return meta
    },
    dispose: () => meta.close(),
  }
}

/** The MetaStores every catalog test runs on. */
export const backends: { name: string; make(): Promise<TestStore> }[] = [
  {
    name: 'MemoryMetaStore',
    make: () => inProcess(new MemoryMetaStore()),
  },
  {
    name: 'LevelMetaStore',
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'vecsnap-catalog-'))
      const location = join(dir, 'meta')
      let meta = new LevelMetaStore({ location, sync: false })
      await meta.open()
      const store: TestStore = {
        meta,
        async reopen() {
          await meta.close()
          meta = new LevelMetaStore({ location, sync: false })
          await meta.open()
          store.meta = meta
          return meta
        },
        async dispose() {
          await meta.close()
          await rm(dir, { recursive: true, force: true })
        },
      }
      return store
    },
  },
  {
    // Checks every read a transaction recorded in its batch, as etcd does: a transaction
    // that reads too much breaks the expectation limit here (LevelDB and memory send none).
    name: 'MapMetaStore (shared conditional)',
    make: () => inProcess(new MapMetaStore({ sharedConditionalBatch: true })),
  },
]

/** A fake clock: each call returns the next millisecond. */
export class Clock {
  t = 1_767_225_600_000
  now = (): number => ++this.t
}

/** A fresh store, a {@link Clock} and a Catalog over the store. */
export interface CatalogEnv {
  store: TestStore
  clock: Clock
  catalog: Catalog
}

/**
 * Builds a fresh {@link CatalogEnv} on `backend` before each test of the enclosing
 * `describe`, and disposes its store after. The returned object is refilled before each test.
 */
export function catalogPerTest(backend: { make(): Promise<TestStore> }): CatalogEnv {
  const env = {} as CatalogEnv
  beforeEach(async () => {
    env.store = await backend.make()
    env.clock = new Clock()
    env.catalog = Catalog.over(env.store.meta, { now: env.clock.now })
  })
  afterEach(async () => {
    await env.store.dispose()
  })
  return env
}

/** Every `[key, value]` in the store. */
export async function dump(meta: MetaStore): Promise<[string, string][]> {
  const out: [string, string][] = []
  for await (const entry of meta.iterate()) out.push(entry)
  return out
}

/** Matches a SnapshotError with `code`. */
export function code(c: string) {
  return expect.objectContaining({ name: 'SnapshotError', code: c })
}

/**
 * Asserts that `fn` rejects as `expected` (a code, or `TypeError`) and that the store is
 * byte-for-byte unchanged.
 */
export async function rejectsCleanly(meta: MetaStore, fn: () => Promise<unknown>, expected: string | typeof TypeError): Promise<void> {
  const before = await dump(meta)
  const p = fn()
  if (typeof expected === 'string') await expect(p).rejects.toEqual(code(expected))
  else await expect(p).rejects.toBeInstanceOf(expected)
  expect(await dump(meta)).toEqual(before)
}

/** A MetaStore wrapper that counts batches (and the operations of the last one). */
export class CountingStore extends DelegatingMetaStore {
  batches = 0
  lastOps: readonly MetaOperation[] = []

  override batch(ops: readonly MetaOperation[], o?: MetaBatchOptions): Promise<void> {
    this.batches++
    this.lastOps = ops
    return this.inner.batch(ops, o)
  }
}

/** pk Int64 (100), vec FloatVector dim 8 (101), text VarChar (102), meta JSON (103). */
export function docsRequest(name = 'docs', extra: Partial<CreateCollectionRequest> = {}): CreateCollectionRequest {
  return {
    name,
    schema: {
      description: 'test docs',
      fields: [
        { name: 'pk', dataType: 'Int64', isPrimaryKey: true, autoId: false },
        { name: 'vec', dataType: 'FloatVector', dim: 8 },
        { name: 'text', dataType: 'VarChar', maxLength: 64, params: { enable_match: 'true' } },
        { name: 'meta', dataType: 'JSON' },
      ],
    },
    ...extra,
  }
}

/** Creates the docs collection with an index `vec_idx` on `vec`. */
export async function seedDocs(catalog: Catalog, name = 'docs', extra: Partial<CreateCollectionRequest> = {}): Promise<CollectionInfo> {
  await catalog.createCollection(docsRequest(name, extra))
  await catalog.createIndex(name, { fieldName: 'vec', indexName: 'vec_idx', params: { index_type: 'HNSW' } })
  return catalog.getCollection(name)
}

/** A file under `files/` named after `tag`. */
export function file(tag: string, size = 10, extra: Partial<SegmentFile> = {}): SegmentFile {
  return { key: `files/test/${tag}`, size, ...extra }
}

/** Binlogs for pk and vec, statslog for pk, with keys tagged `tag`. */
export function flushData(tag: string, numRows = 100): { numRows: number; binlogs: FieldBinlog[]; statslogs: FieldBinlog[] } {
  return {
    numRows,
    binlogs: [
      { fieldId: 100, files: [file(`${tag}/pk/1`, 64, { logId: 1, entries: numRows }), file(`${tag}/pk/2`, 32, { logId: 2 })] },
      { fieldId: 101, files: [file(`${tag}/vec/3`, 256, { logId: 3, checksum: 'sha256:abc' })] },
    ],
    statslogs: [{ fieldId: 100, files: [file(`${tag}/stats/4`, 8, { logId: 4 })] }],
  }
}

/** Allocates and flushes a segment of `collection`. */
export async function flushed(catalog: Catalog, collection: string, tag: string, o: { partition?: string; numRows?: number } = {}) {
  const seg = await catalog.allocSegment({ collection, partition: o.partition })
  return catalog.flushSegment(seg.id, flushData(`${tag}-${seg.id}`, o.numRows))
}
