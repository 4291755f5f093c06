import type { Catalog, CollectionInfo, IndexInfo, ObjectStore } from '../../src/index.js'

/** Name of the Int64 primary-key field (field ID 100, the first field). */
export const PK_FIELD = 'id'
/** Name of the FloatVector field (field ID 101). */
export const VECTOR_FIELD = 'vector'
/** Default name of the HNSW index on the vector field. */
export const DEFAULT_INDEX_NAME = 'vector_hnsw'

/** Options of {@link TinyVectorDb}. */
export interface TinyVectorDbOptions {
  /** The catalog the database records its collections and segments in (`manager.catalog`). */
  catalog: Catalog
  /** Where segment files go: the same store the SnapshotManager was given. */
  objects: ObjectStore
  /** A growing segment is sealed (and a new one started) at this many rows. @default 100000 */
  maxSegmentRows?: number
}

/** Options of {@link TinyVectorDb.createCollection}. */
export interface CreateCollectionOptions {
  /** Vector dimension. */
  dim: number
  description?: string
  /** Shards (virtual channels). @default 1 */
  shardsNum?: number
}

/** Options of {@link TinyVectorDb.createIndex}: HNSW parameters, kept as the index definition's params. */
export interface CreateIndexOptions {
  /** @default 'vector_hnsw' */
  indexName?: string
  /** Graph degree. @default 16 */
  M?: number
  /** Candidate list while building; 0 lets usearch choose. @default 0 */
  efConstruction?: number
  /** Candidate list while searching; 0 lets usearch choose. @default 0 */
  ef?: number
}

/** One search result. */
export interface SearchHit {
  /** The row's primary key. */
  id: bigint
  /** Squared L2 distance to the query. */
  distance: number
}

/** Options of {@link TinyVectorDb.compact}. */
export interface CompactOptions {
  /**
   * Segments with fewer live rows than this are merged, as long as the merged segment
   * stays under it. @default the database's `maxSegmentRows`
   */
  maxRows?: number
}

/** One merge done by {@link TinyVectorDb.compact}. */
export interface CompactionResult {
  /** The segments merged (now `dropped`). */
  sources: number[]
  /** The new segment. */
  segmentId: number
  /** Rows in the new segment. */
  numRows: number
  /** Deleted rows left out. */
  purgedRows: number
}

/** What the database knows of a collection: its catalog record, fields and vector index. */
export interface CollectionContext {
  info: CollectionInfo
  pkFieldId: number
  vectorFieldId: number
  dim: number
  partitionId: number
  /** The live HNSW index on the vector field, if one was created. */
  index: IndexInfo | undefined
}
