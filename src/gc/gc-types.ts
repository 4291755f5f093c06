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
