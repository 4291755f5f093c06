import fc from 'fast-check'
import type { CollectionInfo, SegmentInfo } from '../../src/catalog-types.js'
import type { MetaBatchOptions, MetaOperation, MetaRange, MetaStore } from '../../src/meta/meta-store.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import type { AbortOptions } from '../../src/types.js'
import { DelegatingMetaStore } from '../helpers/delegating-meta-store.js'
import { bytesFor } from './harness.js'

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
