import type { AbortOptions } from '../types.js'

export type RestoreJobState = 'pending' | 'in_progress' | 'completed' | 'failed' | 'cancelled'

/** A restore job as reported (SPEC section 6). */
export interface RestoreJobInfo {
  jobId: number
  snapshotName: string
  sourceCollectionId: number
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
  createdAt: number
  finishedAt?: number
  copiedSegments: number
  totalSegments: number
  copiedBytes: number
  totalBytes: number
}

export interface RestoreSnapshotRequest extends AbortOptions {
  snapshotName: string
  targetCollectionName: string
}

export interface ListRestoreJobsOptions extends AbortOptions {
  /** Only jobs whose target collection has this name. */
  collectionName?: string
}

export interface WaitForRestoreOptions extends AbortOptions {
  /** Called with the job whenever its progress changes, and once at the end. */
  onProgress?: (job: RestoreJobInfo) => void
}
