import type { AbortOptions } from '../types.js'
import type { CollectionSchema, IndexInfo, PartitionInfo } from '../catalog-types.js'

/** Lifecycle of a snapshot record. Only `committed` snapshots are listed, described and restorable. */
export type SnapshotState = 'pending' | 'committed' | 'deleting'

/** A snapshot as listed. */
export interface SnapshotInfo {
  id: number
  name: string
  collectionId: number
  collectionName: string
  description: string
  createdAt: number
  state: SnapshotState
  segmentCount: number
  rowCount: number
  /** Summed size of every file of the snapshot's segments, index files included. */
  sizeBytes: number
  /** Holds in force (expired ones are not listed), by tag; a held snapshot cannot be dropped. */
  holds: SnapshotHold[]
}

/** A hold on a snapshot (see `SnapshotManager.holdSnapshot`). */
export interface SnapshotHold {
  tag: string
  /** When the hold stops holding, epoch milliseconds; absent: until released. */
  expiresAt?: number
}

/** Options of `SnapshotManager.holdSnapshot`. */
export interface HoldSnapshotOptions extends AbortOptions {
  /** The hold's tag; holding again with the same tag renews it. */
  tag: string
  /** The hold expires this long after now; absent: until released. */
  ttlMs?: number
}

/** {@link SnapshotInfo} plus, with `includeCollectionInfo`, the collection as captured. */
export interface SnapshotDescription extends SnapshotInfo {
  collection?: { schema: CollectionSchema; shardsNum: number; partitions: PartitionInfo[]; properties: Record<string, string> }
  indexes?: IndexInfo[]
}

/** Result of {@link SnapshotManager.verifySnapshot}. */
export interface VerifyReport {
  ok: boolean
  /** Data and index objects checked. */
  checkedFiles: number
  /** Referenced keys that do not exist. */
  missing: string[]
  /** Referenced keys whose size or checksum differs from the manifest. */
  corrupt: string[]
}

/** Request of {@link SnapshotManager.createSnapshot}. */
export interface CreateSnapshotRequest extends AbortOptions {
  /** The collection to capture (its flushed segments). */
  collectionName: string
  /** Unique per manager: 1–255 characters of `[A-Za-z0-9_.-]`, starting with a letter, digit or `_`, without `..`. */
  snapshotName: string
  /** Free text. @default '' */
  description?: string
}

/** Options of {@link SnapshotManager.listSnapshots}. */
export interface ListSnapshotsOptions extends AbortOptions {
  /** Only snapshots of this collection (by name at snapshot time). */
  collectionName?: string
}

/** Options of {@link SnapshotManager.describeSnapshot}. */
export interface DescribeSnapshotOptions extends AbortOptions {
  /** Also read the snapshot's metadata JSON for the collection and index definitions as captured. @default false */
  includeCollectionInfo?: boolean
}

/** One segment as a snapshot captured it (decoded from its Avro manifest). */
export type { SnapshotSegment } from '../catalog-types.js'
