import { writeFile, mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Catalog } from '../src/meta/catalog.js'
import { emptySegment } from '../src/meta/catalog-segments.js'
import type { CollectionInfo, FieldBinlog, SegmentFile, SegmentInfo } from '../src/catalog-types.js'
import { guardMetaStore } from '../src/meta/guarded-meta-store.js'
import type { MetaStore } from '../src/meta/meta-store.js'
import { bumpCollectionVersion, writeSegment } from '../src/meta/records.js'
import { Transactor } from '../src/meta/transaction.js'
import { layout } from '../src/storage/layout.js'
import type { ObjectStore } from '../src/storage/object-store.js'

/**
 * Seeding helpers shared by benches: a collection with a vector index and flushed
 * segments of about ten files each, recorded through the public Catalog API.
 */

/** Options of {@link seedCollection}. */
export interface SeedCollectionOptions {
  name: string
  shardsNum?: number
  /** Vector dimension of the `vec` field. @default 128 */
  dim?: number
}

/** Creates `{ pk Int64, vec FloatVector, text VarChar }` with an HNSW index `vec_idx` on `vec`. */
export async function seedCollection(catalog: Catalog, o: SeedCollectionOptions): Promise<CollectionInfo> {
  await catalog.createCollection({
    name: o.name,
    shardsNum: o.shardsNum ?? 2,
    schema: {
      fields: [
        { name: 'pk', dataType: 'Int64', isPrimaryKey: true },
        { name: 'vec', dataType: 'FloatVector', dim: o.dim ?? 128 },
        { name: 'text', dataType: 'VarChar', maxLength: 256 },
      ],
    },
  })
  await catalog.createIndex(o.name, { fieldName: 'vec', indexName: 'vec_idx', params: { index_type: 'HNSW', metric_type: 'L2' } })
  return catalog.getCollection(o.name)
}

/** Options of {@link seedSegments}. */
export interface SeedSegmentsOptions {
  collection: CollectionInfo
  count: number
  /** Rows per segment. @default 1000 */
  numRows?: number
  /** Bytes per file as recorded (and written, with `root`). @default 4096 */
  fileBytes?: number
  /**
   * Write every file under this FsObjectStore root too (restore and GC benches need real
   * files; create does not). @default undefined (record only)
   */
  root?: string
  /** Segments seeded concurrently (the catalog serializes them anyway). @default 64 */
  concurrency?: number
  /** Called every 1000 segments. */
  onProgress?: (done: number) => void
}

/**
 * Seeds `count` flushed segments of 10 files each: 3 fields × 2 binlogs, 1 statslog,
 * 1 deltalog and 2 `vec_idx` index files. Resolves the segment IDs.
 */
export async function seedSegments(catalog: Catalog, o: SeedSegmentsOptions): Promise<number[]> {
  const { collection, count } = o
  const numRows = o.numRows ?? 1000
  const size = o.fileBytes ?? 4096
  const body = o.root === undefined ? undefined : new Uint8Array(size)
  const fieldIds = collection.schema.fields.map((f) => f.fieldId)
  const partitionId = collection.partitions[0].id
  const ids: number[] = []
  const write = async (f: SegmentFile): Promise<SegmentFile> => {
    if (o.root !== undefined && body !== undefined) {
      const path = join(o.root, f.key)
      await mkdir(dirname(path), { recursive: true })
      await writeFile(path, body)
    }
    return f
  }
  const one = async (): Promise<void> => {
    const seg = await catalog.allocSegment({ collection: collection.name })
    const k = { collectionId: collection.id, partitionId, segmentId: seg.id }
    let logId = 1
    const log = async (kind: 'insertLog' | 'statsLog' | 'deltaLog', fieldId: number): Promise<SegmentFile> =>
      write({ key: catalog.layout[kind]({ ...k, fieldId, logId: logId++ }), size, entries: numRows, logId: logId - 1 })
    const binlogs: FieldBinlog[] = []
    for (const fieldId of fieldIds) binlogs.push({ fieldId, files: [await log('insertLog', fieldId), await log('insertLog', fieldId)] })
    const statslogs: FieldBinlog[] = [{ fieldId: fieldIds[0], files: [await log('statsLog', fieldIds[0])] }]
    const deltalogs: FieldBinlog[] = [{ fieldId: fieldIds[0], files: [await log('deltaLog', fieldIds[0])] }]
    await catalog.flushSegment(seg.id, { numRows, binlogs, statslogs, deltalogs })
    const indexFiles: SegmentFile[] = []
    for (const fileName of ['HNSW_0', 'HNSW_1']) {
      // The build ID is allocated by addSegmentIndex; the key only needs to be unique here.
      indexFiles.push(await write({ key: `files/index_files/seed/${seg.id}/${partitionId}/${seg.id}/${fileName}`, size }))
    }
    await catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: indexFiles })
    ids.push(seg.id)
    if (ids.length % 1000 === 0) o.onProgress?.(ids.length)
  }
  const concurrency = o.concurrency ?? 64
  let started = 0
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (started < count) {
        started++
        await one()
      }
    }),
  )
  return ids.sort((a, b) => a - b)
}

/** Options of {@link seedSegmentsDirect}. */
export interface SeedDirectOptions {
  collection: CollectionInfo
  count: number
  /** Segments per transaction. @default 25 (two writes each: within SPEC section 11's 64) */
  perTransaction?: number
  /** Files per segment (binlogs of the first field), each of `fileBytes`. @default 1 */
  files?: number
  /** @default 16 */
  fileBytes?: number
  /** Write each file into this ObjectStore too. @default undefined (record only) */
  objects?: ObjectStore
  onProgress?: (done: number) => void
}

/**
 * Seeds `count` flushed segments by writing their records the way the catalog does
 * (`writeSegment`, so their captures are stored), many per transaction: seeding 100k
 * segments through `allocSegment` + `flushSegment` would take minutes. Resolves them.
 */
export async function seedSegmentsDirect(meta: MetaStore, catalog: Catalog, o: SeedDirectOptions): Promise<SegmentInfo[]> {
  const { collection: c, count } = o
  const per = o.perTransaction ?? 25
  const files = o.files ?? 1
  const size = o.fileBytes ?? 16
  const body = new Uint8Array(size)
  const fieldId = c.schema.fields[0].fieldId
  const partitionId = c.partitions[0].id
  const transactor = new Transactor(guardMetaStore(meta))
  const base = await catalog.allocIds(count)
  const now = Date.now()
  const out: SegmentInfo[] = []
  for (let done = 0; done < count; ) {
    const n = Math.min(per, count - done)
    const chunk: SegmentInfo[] = []
    for (let i = 0; i < n; i++) {
      const id = base + done + i
      const list: SegmentFile[] = Array.from({ length: files }, (_, j) => ({
        key: layout.insertLog({ collectionId: c.id, partitionId, segmentId: id, fieldId, logId: j + 1 }),
        size,
        logId: j + 1,
        entries: 10,
      }))
      chunk.push({
        ...emptySegment({ id, collectionId: c.id, partitionId, channel: c.channels[id % c.channels.length], state: 'flushed', level: 'L1', createdAt: now }),
        numRows: 10,
        binlogs: [{ fieldId, files: list }],
      })
    }
    await transactor.run(async (tx) => {
      for (const s of chunk) writeSegment(tx, s)
      await bumpCollectionVersion(tx, c.id)
    })
    if (o.objects !== undefined) {
      const objects = o.objects
      await Promise.all(chunk.flatMap((s) => s.binlogs[0].files.map((f) => objects.put(f.key, body))))
    }
    out.push(...chunk)
    done += n
    if (done % 10_000 === 0) o.onProgress?.(done)
  }
  return out
}
