import type { AbortOptions } from '../types.js'

/**
 * State of a restore job: `pending` (accepted) → `in_progress` (copying) → `completed`,
 * or `failed` / `cancelled`, which roll the target back.
 */
export type RestoreJobState = 'pending' | 'in_progress' | 'completed' | 'failed' | 'cancelled'

/** A restore job as reported (SPEC section 6). */
export interface RestoreJobInfo {
  /** The job's ID, as `restoreSnapshot` returned it. */
  jobId: number
  /** The snapshot being restored. */
  snapshotName: string
  /** ID of the collection the snapshot was taken of (it may have been dropped since). */
  sourceCollectionId: number
  /** Name of the collection being created. */
  targetCollectionName: string
  /** ID of the target collection. */
  collectionId: number
  state: RestoreJobState
  /** floor(100 × copiedSegments / totalSegments); 100 when there is nothing to copy. Never decreases. */
  progress: number
  /** Why the job failed or was cancelled; '' otherwise. */
  reason: string
  /** Elapsed time so far while running; the total once finished. */
  timeCostMs: number
  /** When the job was accepted, epoch milliseconds. */
  createdAt: number
  /** When it completed, or when the rollback of a failed or cancelled job finished. */
  finishedAt?: number
  /** Segments whose files are all copied. */
  copiedSegments: number
  /** Segments of the snapshot. */
  totalSegments: number
  /** Bytes of the copied segments' files. */
  copiedBytes: number
  /** Bytes of every file of the snapshot's segments, index files included. */
  totalBytes: number
}

/** Request of `restoreSnapshot`. */
export interface RestoreSnapshotRequest extends AbortOptions {
  /** A committed snapshot. */
  snapshotName: string
  /** Name of the collection to create; must be valid and free (not a collection, not being restored into). */
  targetCollectionName: string
}

/** Options of `listRestoreJobs`. */
export interface ListRestoreJobsOptions extends AbortOptions {
  /** Only jobs whose target collection has this name. */
  collectionName?: string
}

/** Options of `waitForRestore`. */
export interface WaitForRestoreOptions extends AbortOptions {
  /** Called with the job whenever its progress changes, and once at the end. */
  onProgress?: (job: RestoreJobInfo) => void
}
