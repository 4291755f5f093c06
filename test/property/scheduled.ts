import fc from 'fast-check'
import { expect } from 'vitest'
import type { CollectionInfo, SegmentInfo } from '../../src/catalog-types.js'
import type { MetaBatchOptions, MetaOperation, MetaRange, MetaStore } from '../../src/meta/meta-store.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import type { AbortOptions } from '../../src/types.js'
import { DelegatingMetaStore } from '../helpers/delegating-meta-store.js'
import { bytesFor, hashOf } from './harness.js'

/** Store wrappers that let `fc.scheduler()` decide the order in which every call starts, and the seeding the race tests share. */

/** Runs every store call through the scheduler while `racing` is set. */
export class Scheduled {
  racing = false
  constructor(readonly s: fc.Scheduler) {}

  async gate(label: string): Promise<void> {
    if (this.racing) await this.s.schedule(Promise.resolve(), label)
  }

  meta(inner: MetaStore): MetaStore {
    return new ScheduledMetaStore(inner, this)
  }

  objects(inner: ObjectStore): ObjectStore {
    const self = this
    return {
      capabilities: inner.capabilities,
      async put(k, b, o) {
        await self.gate(`put ${k}`)
        return inner.put(k, b, o)
      },
      async get(k, o) {
        await self.gate(`get ${k}`)
        return inner.get(k, o)
      },
      async head(k, o) {
        await self.gate(`head ${k}`)
        return inner.head(k, o)
      },
      async *list(p, o) {
        await self.gate(`list ${p}`)
        yield* inner.list(p, o)
      },
      async copy(a, b, o) {
        await self.gate(`copy ${a}`)
        return inner.copy(a, b, o)
      },
      async delete(k, o) {
        await self.gate(`delete ${k.length}`)
        return inner.delete(k, o)
      },
    }
  }
}

/** A MetaStore whose reads and batches wait for `scheduled` to let them start. */
class ScheduledMetaStore extends DelegatingMetaStore {
  constructor(inner: MetaStore, readonly scheduled: Scheduled) {
    super(inner)
  }

  override async get(k: string, o?: AbortOptions): Promise<string | undefined> {
    await this.scheduled.gate(`meta.get ${k}`)
    return this.inner.get(k, o)
  }

  override async batch(ops: readonly MetaOperation[], o?: MetaBatchOptions): Promise<void> {
    await this.scheduled.gate(`meta.batch ${ops.length}`)
    return this.inner.batch(ops, o)
  }

  override async *iterate(range?: MetaRange, o?: AbortOptions): AsyncGenerator<[string, string]> {
    await this.scheduled.gate(`meta.iterate ${range?.gte ?? range?.gt ?? ''}`)
    yield* this.inner.iterate(range, o)
  }
}

export function filesOf(s: Pick<SegmentInfo, 'binlogs' | 'statslogs' | 'deltalogs' | 'bm25logs' | 'indexes' | 'textIndexes' | 'jsonKeyIndexes'>): string[] {
  return [...segmentFiles(s)].map((f) => f.file.key)
}

export async function put(objects: ObjectStore, key: string): Promise<{ key: string; size: number }> {
  const bytes = bytesFor(key)
  await objects.put(key, bytes)
  return { key, size: bytes.byteLength }
}

export async function seedSegment(manager: SnapshotManager, objects: ObjectStore, c: CollectionInfo, n: number): Promise<SegmentInfo> {
  const { catalog } = manager
  const seg = await catalog.allocSegment({ collection: c.name })
  const ids = { collectionId: c.id, partitionId: seg.partitionId, segmentId: seg.id }
  const [pk, vec, text] = c.schema.fields.map((f) => f.fieldId)
  await catalog.flushSegment(seg.id, {
    numRows: n,
    binlogs: [{ fieldId: pk, files: [await put(objects, catalog.layout.insertLog({ ...ids, fieldId: pk, logId: 1 }))] }],
    statslogs: [{ fieldId: pk, files: [await put(objects, catalog.layout.statsLog({ ...ids, fieldId: pk, logId: 2 }))] }],
    deltalogs: [{ fieldId: pk, files: [await put(objects, catalog.layout.deltaLog({ ...ids, fieldId: pk, logId: 3 }))] }],
  })
  const k = { buildId: 5_000 + seg.id, version: 1, ...ids }
  await catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [await put(objects, catalog.layout.indexFile({ ...k, fileName: 'HNSW' }))] })
  await catalog.addTextIndex(seg.id, { fieldId: text, files: [await put(objects, catalog.layout.textIndex({ ...k, fieldId: text, fileName: 't' }))] })
  void vec
  return catalog.getSegment(seg.id)
}

/** The race tests' collection: pk, vec (indexed by `vec_idx`), text. */
export async function raceCollection(manager: SnapshotManager): Promise<CollectionInfo> {
  const { catalog } = manager
  await catalog.createCollection({
    name: 'docs',
    schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }, { name: 'vec', dataType: 'FloatVector', dim: 4 }, { name: 'text', dataType: 'VarChar', maxLength: 8 }] },
  })
  await catalog.createIndex('docs', { fieldName: 'vec', indexName: 'vec_idx' })
  return catalog.getCollection('docs')
}

/**
 * What a snapshot taken during the race may restore to: the kept segment with the two
 * racing segments, or with the compaction's result; with or without index files when the
 * index is dropped in the race. `capture` hashes the files of any list of segments.
 */
export function possibleCaptures(all: readonly SegmentInfo[], kept: SegmentInfo, racing: readonly SegmentInfo[], mergedKey: string, dropIndex: boolean) {
  const indexKeys = new Set(all.flatMap((seg) => seg.indexes.flatMap((ix) => ix.files.map((f) => f.key))))
  const capture = (segs: string[][], withIndex: boolean): string[] => segs.flat().filter((k) => withIndex || !indexKeys.has(k)).map((k) => hashOf(bytesFor(k))).sort()
  const possible: string[][] = []
  for (const compacted of [false, true]) {
    for (const indexed of dropIndex ? [true, false] : [true]) {
      possible.push(capture(compacted ? [filesOf(kept), [mergedKey]] : [filesOf(kept), ...racing.map(filesOf)], indexed))
    }
  }
  return { capture, possible }
}

/** Every file of a flushed segment of `docs` exists in `raw` (without index files once the index is dropped). */
export async function expectLiveFiles(manager: SnapshotManager, raw: ObjectStore, dropIndex: boolean): Promise<void> {
  for (const seg of await manager.catalog.listSegments('docs', { states: ['flushed'] })) {
    const live = dropIndex ? filesOf({ ...seg, indexes: [] }) : filesOf(seg)
    for (const k of live) expect(await raw.head(k), `live ${k}`).toBeDefined()
  }
}

/** Restores `name` into `r_{name}` and resolves the sorted hashes of the restored files. */
export async function restoredHashes(manager: SnapshotManager, raw: ObjectStore, name: string): Promise<string[]> {
  expect(await manager.verifySnapshot(name)).toMatchObject({ ok: true, missing: [] })
  const job = await manager.restoreSnapshot({ snapshotName: name, targetCollectionName: `r_${name}` })
  await manager.waitForRestore(job)
  const hashes: string[] = []
  for (const seg of await manager.catalog.listSegments(`r_${name}`)) for (const k of filesOf(seg)) hashes.push(hashOf((await raw.get(k)) as Uint8Array))
  return hashes.sort()
}

/** Drops every snapshot and collection, runs GC, and expects nothing left under `files/` or `snapshots/`. */
export async function expectNothingLeft(manager: SnapshotManager, raw: ObjectStore): Promise<void> {
  for (const snap of await manager.listSnapshots()) await manager.dropSnapshot(snap.name)
  for (const coll of await manager.catalog.listCollections()) await manager.catalog.dropCollection(coll.name)
  await manager.runGc()
  const left: string[] = []
  for await (const o of raw.list('files/')) left.push(o.key)
  for await (const o of raw.list('snapshots/')) left.push(o.key)
  expect(left).toEqual([])
}
