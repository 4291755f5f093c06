import { createHash } from 'node:crypto'
import type { Catalog } from '../../src/meta/catalog.js'
import type { CollectionInfo, CreateCollectionRequest, CreateIndexRequest, FieldSchema, SegmentInfo } from '../../src/catalog-types.js'
import type { ManifestRecord } from '../../src/format/manifest-codec.js'

/**
 * The fields of a seeded collection, in this order (so field IDs 100 to 103): `pk` Int64
 * primary key, `vec` FloatVector of `dim`, `text` VarChar up to 64, `meta` JSON.
 */
export function docsFields(dim: number): FieldSchema[] {
  return [
    { name: 'pk', dataType: 'Int64', isPrimaryKey: true },
    { name: 'vec', dataType: 'FloatVector', dim },
    { name: 'text', dataType: 'VarChar', maxLength: 64 },
    { name: 'meta', dataType: 'JSON' },
  ]
}

/** Options of {@link createDocsCollection}: the rest of the request, left out unless given. */
export interface DocsCollectionOptions extends Pick<CreateCollectionRequest, 'shardsNum' | 'partitionNames' | 'properties'> {
  /** Dimension of `vec`. */
  dim: number
  /** The schema's description. */
  description?: string
}

/** Creates `name` with the {@link docsFields} and no index. */
export async function createDocsCollection(catalog: Catalog, name: string, o: DocsCollectionOptions): Promise<CollectionInfo> {
  const { dim, description, ...rest } = o
  const schema = description === undefined ? { fields: docsFields(dim) } : { description, fields: docsFields(dim) }
  return catalog.createCollection({ name, ...rest, schema })
}

/** Options of {@link seedDocsCollection}. */
export interface SeedCollectionOptions extends DocsCollectionOptions {
  /** Indexes to create, in order. @default `vec_idx` (HNSW) on `vec` */
  indexes?: CreateIndexRequest[]
}

/** Creates `name` with the {@link docsFields} and its indexes; resolves the collection as stored. */
export async function seedDocsCollection(catalog: Catalog, name: string, o: SeedCollectionOptions): Promise<CollectionInfo> {
  const { indexes = [{ fieldName: 'vec', indexName: 'vec_idx', params: { index_type: 'HNSW' } }], ...request } = o
  await createDocsCollection(catalog, name, request)
  for (const index of indexes) await catalog.createIndex(name, index)
  return catalog.getCollection(name)
}

/** The log kinds the layout names keys of. */
export type LogKind = 'insertLog' | 'statsLog' | 'deltaLog' | 'bm25Log'

/** A segment just allocated, for a fixture to write files for and flush. */
export interface NewSegment {
  seg: SegmentInfo
  /** Field IDs of the collection, in schema order (`pk`, `vec`, `text`, `meta` for {@link docsFields}). */
  fieldIds: number[]
  /** The layout key of the segment's next log of `kind` on `fieldId`, and its log ID (1, 2, … per segment). */
  nextLog(kind: LogKind, fieldId: number): { key: string; logId: number }
}

/** Allocates a segment of `collection` (in `partition`, else `_default`) and numbers its logs. */
export async function newSegment(catalog: Catalog, collection: CollectionInfo, partition?: string): Promise<NewSegment> {
  const seg = await catalog.allocSegment({ collection: collection.name, partition })
  const ids = { collectionId: collection.id, partitionId: seg.partitionId, segmentId: seg.id }
  let logId = 0
  return {
    seg,
    fieldIds: collection.schema.fields.map((f) => f.fieldId),
    nextLog(kind, fieldId) {
      const id = ++logId
      return { key: catalog.layout[kind]({ ...ids, fieldId, logId: id }), logId: id }
    },
  }
}

/** Deterministic bytes of a seeded file, `size` long: the key's sha256, repeated, XOR the offset. */
export function seededBytes(key: string, size: number): Uint8Array {
  const out = Buffer.alloc(size)
  const seed = createHash('sha256').update(key).digest()
  for (let i = 0; i < size; i++) out[i] = seed[i % seed.length] ^ (i & 0xff)
  return out
}

/** The manifest record of flushed segment `id`: one 40-byte pk binlog of `numRows` entries, no other file. */
export function manifestRecord(id: number, numRows: number): ManifestRecord {
  return {
    id,
    collectionId: 1,
    partitionId: 2,
    channel: 'ch_0',
    state: 'flushed',
    level: 'L1',
    numRows,
    binlogs: [{ fieldId: 100, files: [{ key: `files/insert_log/1/2/${id}/100/1`, size: 40, logId: 1, entries: numRows }] }],
    statslogs: [],
    deltalogs: [],
    bm25logs: [],
    indexes: [],
    textIndexes: [],
    jsonKeyIndexes: [],
  }
}
