import type { SnapshotSegment } from '../catalog-types.js'

/** A segment as its manifest stores it: the captured segment plus its collection and state. */
export interface ManifestRecord extends SnapshotSegment {
  collectionId: number
  /** Segment state when captured; always `flushed` today. */
  state: string
}
