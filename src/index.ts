export { SnapshotManager } from './snapshot-manager.js'
export type { SnapshotManagerState } from './snapshot-manager.js'
export { SnapshotError, ERROR_CODES } from './errors.js'
export type { SnapshotErrorCode, SnapshotErrorOptions } from './errors.js'
export { DEFAULTS } from './options.js'
export type { SnapshotManagerOptions, ResolvedOptions } from './options.js'
export type { SnapshotManagerEvents } from './events.js'
export type { AbortOptions } from './types.js'

export { LocalLeadership } from './cluster/local-leadership.js'
export type { LoopLeadership, LeadershipHandlers, CampaignOptions, DemotionReason, CreateLeadershipOptions, LeadershipSource } from './cluster/leadership.js'

export { Catalog } from './meta/catalog.js'
export type { CatalogOptions, CatalogOverOptions } from './meta/catalog.js'
export type * from './catalog-types.js'
export { LevelMetaStore } from './meta/level-meta-store.js'
export type { LevelMetaStoreOptions, LevelMetaStoreDatabase } from './meta/level-meta-store.js'
export type { AnyAbstractLevel } from './meta/abstract-level-meta-store.js'
export { MemoryMetaStore } from './meta/memory-meta-store.js'
export { isMetaConflict, prefixRange, MAX_BATCH_OPS, MAX_BATCH_EXPECTATIONS, MAX_BATCH_BYTES } from './meta/meta-store.js'
export type {
  MetaStore,
  MetaOperation,
  MetaExpectation,
  MetaBatchOptions,
  MetaRange,
  MetaStoreCapabilities,
  StoreStatus,
} from './meta/meta-store.js'

export { FsObjectStore } from './storage/fs-object-store.js'
export type { FsObjectStoreOptions, RemoveStaleTempFilesOptions } from './storage/fs-object-store.js'
export type { ObjectStore, ObjectInfo, ObjectStoreCapabilities, CopyMode, CopyOptions, PutOptions, PutStreamOptions } from './storage/object-store.js'
export { readObjectStream, writeObjectStream } from './storage/streaming.js'
export { layout, FILES_PREFIX, SNAPSHOTS_PREFIX } from './storage/layout.js'
export { validateObjectKey, validatePrefix } from './storage/keys-validate.js'
export type { Layout, SegmentKeyIds, FieldLogKeyIds, IndexFileKeyIds, FieldIndexFileKeyIds } from './storage/layout.js'

export type * from './snapshot/snapshot-types.js'
export type * from './restore/job-types.js'
export type * from './gc/gc-types.js'
export type * from './repository/repository-types.js'
export type { RetentionPolicy, PruneReport, KeptSnapshot, PruneKept, PrunedSnapshot, PruneFailure } from './policy/retention.js'
export type { PruneSnapshotsOptions } from './snapshot/snapshot-prune.js'
export type * from './schedule/schedule-types.js'
