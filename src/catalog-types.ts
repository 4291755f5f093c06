import type { AbortOptions } from './types.js'

/** Data types a field may have (Milvus's names). Others are accepted as strings. */
export type DataType =
  | 'Bool' | 'Int8' | 'Int16' | 'Int32' | 'Int64' | 'Float' | 'Double'
  | 'VarChar' | 'String' | 'JSON' | 'Array'
  | 'FloatVector' | 'BinaryVector' | 'Float16Vector' | 'BFloat16Vector' | 'SparseFloatVector'
  | (string & {})

/** A field as the host declares it. */
export interface FieldSchema {
  name: string
  dataType: DataType
  isPrimaryKey?: boolean
  autoId?: boolean
  /** Vector dimension. */
  dim?: number
  /** VarChar length limit. */
  maxLength?: number
  params?: Record<string, string>
}

/** A field as stored: with its ID (100 upward, in declaration order). */
export interface StoredFieldSchema extends FieldSchema {
  fieldId: number
}

/** A collection's schema as stored: its fields with their IDs (100 upward, in declaration order). */
export interface CollectionSchema {
  fields: StoredFieldSchema[]
  description?: string
}

/** `restoring` while a restore job owns the collection (not listed, not writable); `created` otherwise. */
export type CollectionState = 'created' | 'restoring'

/** A partition of a collection. */
export interface PartitionInfo {
  id: number
  name: string
}

/** A collection as the catalog records it. */
export interface CollectionInfo {
  id: number
  name: string
  schema: CollectionSchema
  shardsNum: number
  /** One virtual channel per shard. */
  channels: string[]
  partitions: PartitionInfo[]
  properties: Record<string, string>
  createdAt: number
  state: CollectionState
}

export interface CreateCollectionRequest extends AbortOptions {
  name: string
  schema: { fields: FieldSchema[]; description?: string }
  /** Default 1. */
  shardsNum?: number
  /** Default `['_default']`. */
  partitionNames?: string[]
  properties?: Record<string, string>
}

/** An index definition on one field (Milvus allows one per field). */
export interface IndexInfo {
  id: number
  fieldId: number
  name: string
  params: Record<string, string>
}

/** What `catalog.createIndex` takes. */
export interface CreateIndexRequest {
  fieldName: string
  indexName: string
  params?: Record<string, string>
}

/** One stored file of a segment. */
export interface SegmentFile {
  key: string
  size: number
  logId?: number
  entries?: number
  /** Host-supplied checksum (any string the host can recompute, e.g. `sha256:<hex>` or `crc32c:<hex>`). */
  checksum?: string
}

/** The files of one field. */
export interface FieldBinlog {
  fieldId: number
  files: SegmentFile[]
}

/** The files of one build of an index definition on a segment. */
export interface SegmentIndexInfo {
  indexId: number
  buildId: number
  files: SegmentFile[]
}

/** Text-match or JSON-key index files of one field. */
export interface FieldIndexFiles {
  fieldId: number
  buildId: number
  files: SegmentFile[]
}

/** `growing` until flushed; `flushed` is immutable (but for added deltalogs and index builds); `dropped` until GC forgets it. */
export type SegmentState = 'growing' | 'flushed' | 'dropped'

/** Compaction level: L0 holds deletes only, L1 fresh flushes, L2 clustered. */
export type SegmentLevel = 'L0' | 'L1' | 'L2'

/** The file lists of a segment (or of a snapshot's copy of one), one per file class. */
export interface SegmentFileLists {
  binlogs: FieldBinlog[]
  statslogs: FieldBinlog[]
  deltalogs: FieldBinlog[]
  bm25logs: FieldBinlog[]
  indexes: SegmentIndexInfo[]
  textIndexes: FieldIndexFiles[]
  jsonKeyIndexes: FieldIndexFiles[]
}

/** A segment as the catalog records it, with every file of every class. */
export interface SegmentInfo extends SegmentFileLists {
  id: number
  collectionId: number
  partitionId: number
  channel: string
  state: SegmentState
  level: SegmentLevel
  numRows: number
  createdAt: number
  droppedAt?: number
}

export interface AllocSegmentRequest extends AbortOptions {
  collection: string
  /** Default `_default`. */
  partition?: string
  /** Default: channels are assigned round-robin by segment ID. */
  channel?: string
  /** Default `L1`. */
  level?: SegmentLevel
}

/** What `catalog.flushSegment` takes: the row count and the files written. */
export interface FlushSegmentRequest {
  numRows: number
  binlogs: FieldBinlog[]
  statslogs?: FieldBinlog[]
  deltalogs?: FieldBinlog[]
  bm25logs?: FieldBinlog[]
}

/** What `catalog.addSegmentIndex` takes: the index by name and the build's files. */
export interface AddSegmentIndexRequest {
  indexName: string
  files: SegmentFile[]
}

/** What `catalog.addTextIndex` and `catalog.addJsonKeyIndex` take. */
export interface AddFieldIndexRequest {
  fieldId: number
  files: SegmentFile[]
}

export interface CompactRequest extends AbortOptions {
  collection: string
  sources: number[]
  result: { numRows: number; binlogs: FieldBinlog[]; statslogs?: FieldBinlog[]; deltalogs?: FieldBinlog[]; bm25logs?: FieldBinlog[] }
  /** Level of the result segment. Default `L1`. */
  level?: SegmentLevel
}

export interface ListSegmentsOptions extends AbortOptions {
  states?: SegmentState[]
}

/** One segment as a snapshot captured it (decoded from its Avro manifest). */
export interface SnapshotSegment extends SegmentFileLists {
  id: number
  partitionId: number
  channel: string
  level: SegmentLevel
  numRows: number
}
