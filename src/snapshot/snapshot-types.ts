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
  /** The schedule that created it (see `SnapshotManager.putSchedule`); absent for a snapshot created by a call. */
  schedule?: string
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

/** Options of `SnapshotManager.spaceReport`. */
export interface SpaceReportOptions extends AbortOptions {
  /** Report only this collection (by name; a dropped collection by the name its snapshots recorded). */
  collectionName?: string
}

/** Space one snapshot takes, in bytes of segment and index files (ZFS semantics). */
export interface SnapshotSpace {
  name: string
  collectionName: string
  /** Every file the snapshot references. */
  referencedBytes: number
  /** What dropping this snapshot alone would free now: files no other snapshot, no live segment and no unfinished restore needs. */
  exclusiveBytes: number
  /** Files this snapshot references that the previous snapshot of the collection did not (all of them for the first). */
  writtenBytes: number
}

/** Space one collection takes, in bytes of segment and index files. */
export interface CollectionSpace {
  name: string
  /** Files of the collection's live (not dropped) segments. */
  liveBytes: number
  /** What dropping every snapshot of the collection would free (not the sum of their `exclusiveBytes`). */
  snapshotOnlyBytes: number
}

/** What `SnapshotManager.spaceReport` returns. */
export interface SpaceReport {
  /** Committed snapshots, by `createdAt` then `id`. */
  snapshots: SnapshotSpace[]
  /** Collections (live ones, and dropped ones that still have snapshots), by name. */
  collections: CollectionSpace[]
  /** Every file the reported collections' live segments and snapshots hold, each once. */
  totalBytes: number
}
