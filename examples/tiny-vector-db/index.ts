/**
 * tiny-vector-db: a small but real vector database built only on vecsnap's public API
 * (the Catalog for metadata, an ObjectStore for files). See db.ts.
 */
export { TinyVectorDb } from './db.js'
export type { CollectionStats } from './db.js'
export { PK_FIELD, VECTOR_FIELD, DEFAULT_INDEX_NAME } from './types.js'
export type {
  TinyVectorDbOptions,
  CreateCollectionOptions,
  CreateIndexOptions,
  SearchHit,
  CompactOptions,
  CompactionResult,
} from './types.js'
