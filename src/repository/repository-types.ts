import type { ObjectStore } from '../storage/object-store.js'
import type { RetentionPolicy } from '../policy/retention.js'
import type { AbortOptions } from '../types.js'

/**
 * Public shapes of repositories: backups of snapshots in another ObjectStore (SPEC
 * section 14). The format is described in `repository-format.ts` and docs/formats.md.
 */

/** Where a repository lives: a store and a key prefix inside it. */
export interface RepositoryLocation {
  /**
   * Key prefix of the repository inside its store: `''` (the whole store) or a valid key
   * such as `backups/vecsnap` (a trailing `/` is ignored). Every key the repository uses
   * is `{prefix}/{key}`. @default ''
   */
  prefix?: string
}

/** Progress of an export or import, reported after each segment or index file. */
export interface RepositoryProgress {
  /** Segment and index files of the snapshot (its metadata JSON and manifests are not counted). */
  totalFiles: number
  totalBytes: number
  /** Files copied so far by this call. */
  copiedFiles: number
  copiedBytes: number
  /** Files found in place (not copied again) so far. */
  skippedFiles: number
  skippedBytes: number
}

/** Options of `exportSnapshot`. */
export interface ExportSnapshotOptions extends RepositoryLocation, AbortOptions {
  /** The store that holds (or will hold) the repository: another bucket, prefix, cloud or directory. */
  to: ObjectStore
  /** Called after each segment or index file is copied or skipped. */
  onProgress?: (progress: RepositoryProgress) => void
}

/** What an export did. Counts cover segment and index files; metadata JSON and manifests are not counted. */
export interface ExportReport {
  snapshotName: string
  /** The entry's ID in the repository: what `importSnapshot` takes. */
  repositorySnapshotId: string
  copiedFiles: number
  skippedFiles: number
  copiedBytes: number
  skippedBytes: number
  timeCostMs: number
}

/** Options of `listRepositorySnapshots` and `verifyRepository`. */
export interface RepositoryOptions extends RepositoryLocation, AbortOptions {
  /** The store that holds the repository. */
  store: ObjectStore
}

/** One exported snapshot in a repository. */
export interface RepositorySnapshotInfo {
  repositorySnapshotId: string
  /** The snapshot's name in the manager it was exported from. */
  snapshotName: string
  collectionName: string
  /** When the snapshot was taken (epoch ms). */
  createdAt: number
  /** When it was exported (epoch ms). */
  exportedAt: number
  segmentCount: number
  rowCount: number
  sizeBytes: number
}

/** Request of `importSnapshot`. */
export interface ImportSnapshotRequest extends RepositoryLocation, AbortOptions {
  /** The store that holds the repository. */
  from: ObjectStore
  /** The entry to import (see `listRepositorySnapshots`). */
  repositorySnapshotId: string
  /** The name of the snapshot in this manager (the snapshot naming rule applies; it must be free). */
  snapshotName: string
  /** Called after each segment or index file is copied or skipped. */
  onProgress?: (progress: RepositoryProgress) => void
}

/** How much `verifyRepository` reads. */
export type RepositoryReadData = 'none' | 'sample' | 'all'

/** Options of `verifyRepository`. */
export interface VerifyRepositoryOptions extends RepositoryOptions {
  /**
   * `none`: existence and size of every file; `sample`: also the SHA-256 of a random tenth
   * of the files (at least one); `all`: the SHA-256 of every file. @default 'none'
   */
  readData?: RepositoryReadData
}

/** Options of `pruneRepository`. */
export interface PruneRepositoryOptions extends RepositoryOptions {
  /** The retention policy (SPEC section 12), applied to the entries, grouped by collection name. */
  policy: RetentionPolicy
  /** Decide and report, delete nothing. @default false */
  dryRun?: boolean
}
