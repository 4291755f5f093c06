import type { AbortOptions } from '../types.js'

/** Result of one GC pass (SPEC section 7). */
export interface GcReport {
  /** Objects deleted (or, in a dry run, that would be), orphans included. */
  deletedObjects: number
  deletedBytes: number
  /** Collectable-by-catalog files kept because a snapshot or an unfinished restore references them. */
  keptForSnapshots: number
  /** Files kept because their drop (or, for orphans, their age) is within the grace period. */
  keptForGrace: number
  /** Unreferenced objects under `files/` deleted (or that would be). */
  orphansDeleted: number
  dryRun: boolean
}

export interface RunGcOptions extends AbortOptions {
  /** Report what would be deleted, delete nothing. @default false */
  dryRun?: boolean
}

/** Why GC keeps a key, or why it would delete it (see `SnapshotManager.explainObject`). */
export interface ExplainReason {
  kind: 'segment' | 'index-build' | 'snapshot' | 'restore-job' | 'grace'
  /** Segment, build or snapshot ID. */
  id?: number
  /** Snapshot name. */
  name?: string
  /** End of the grace period, epoch milliseconds. */
  until?: number
}

/** What `SnapshotManager.explainObject` returns. */
export interface ObjectExplanation {
  key: string
  exists: boolean
  /** Size in the store, when it exists. */
  sizeBytes?: number
  /**
   * What GC does with the key now: keeps it for a `live` segment, a `snapshot`, an
   * unfinished `restore`, or its `grace` period; deletes it as a `collectable` file of a
   * dropped segment or build, or as an `orphan` nothing knows.
   */
  verdict: 'live' | 'snapshot' | 'restore' | 'grace' | 'collectable' | 'orphan'
  reasons: ExplainReason[]
}
