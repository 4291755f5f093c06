/**
 * Every MetaStore key vecsnap writes, in one place. IDs are zero-padded to 16 digits so
 * that key order is numeric order. Areas: `c/` catalog, `s/` snapshots, `r/` restore
 * jobs, `g/` gc, `l/` the loop runner's election (etcd only: lease-bound keys written by
 * `EtcdLeadership`, never through the MetaStore). A host may share the MetaStore as long as it stays out of these prefixes.
 */

const PAD = 16

/** Zero-padded decimal ID, so that string order equals numeric order. */
export function pad(id: number): string {
  return String(id).padStart(PAD, '0')
}

/** Parses the last '/'-separated segment of a key as an ID. */
export function idFromKey(key: string): number {
  return Number(key.slice(key.lastIndexOf('/') + 1))
}

export const keys = Object.freeze({
  /** The persistent ID allocator: the next free ID. */
  nextId: 'c/next-id',

  // catalog
  collection: (id: number) => `c/coll/${pad(id)}`,
  collectionPrefix: 'c/coll/',
  collectionName: (name: string) => `c/coll-name/${name}`,
  /** Index definitions, including dropped ones (`droppedAt` set) until GC forgets them. */
  index: (collectionId: number, indexId: number) => `c/index/${pad(collectionId)}/${pad(indexId)}`,
  indexPrefix: (collectionId: number) => `c/index/${pad(collectionId)}/`,
  indexAllPrefix: 'c/index/',
  segment: (id: number) => `c/seg/${pad(id)}`,
  segmentPrefix: 'c/seg/',
  /**
   * Secondary index: collection → its segments. The value is what a snapshot captures of
   * the segment (`storedCapture` in snapshot/segment-capture.ts), or empty (older versions).
   */
  collectionSegment: (collectionId: number, segmentId: number) => `c/coll-seg/${pad(collectionId)}/${pad(segmentId)}`,
  collectionSegmentPrefix: (collectionId: number) => `c/coll-seg/${pad(collectionId)}/`,
  /** Dropped collections kept for GC (value: `{ id, name, droppedAt }`). */
  droppedCollection: (id: number) => `c/coll-dropped/${pad(id)}`,
  droppedCollectionPrefix: 'c/coll-dropped/',

  // snapshots
  snapshot: (id: number) => `s/snap/${pad(id)}`,
  snapshotPrefix: 's/snap/',
  snapshotName: (name: string) => `s/name/${name}`,
  /** Reference index: segment → snapshots that pin it (value is empty). */
  segmentRef: (segmentId: number, snapshotId: number) => `s/ref-seg/${pad(segmentId)}/${pad(snapshotId)}`,
  segmentRefPrefix: (segmentId: number) => `s/ref-seg/${pad(segmentId)}/`,
  segmentRefAllPrefix: 's/ref-seg/',
  /** Reference index: index build → snapshots that pin it (value is empty). */
  buildRef: (buildId: number, snapshotId: number) => `s/ref-build/${pad(buildId)}/${pad(snapshotId)}`,
  buildRefPrefix: (buildId: number) => `s/ref-build/${pad(buildId)}/`,
  buildRefAllPrefix: 's/ref-build/',
  /** Manifest objects → snapshots that list them (so drop keeps shared manifests). */
  manifestRef: (manifestKey: string, snapshotId: number) => `s/ref-manifest/${manifestKey}\u0000${pad(snapshotId)}`,
  manifestRefPrefix: (manifestKey: string) => `s/ref-manifest/${manifestKey}\u0000`,

  // restore jobs
  restoreJob: (id: number) => `r/job/${pad(id)}`,
  restoreJobPrefix: 'r/job/',
  restoreTask: (jobId: number, taskId: number) => `r/task/${pad(jobId)}/${pad(taskId)}`,
  restoreTaskPrefix: (jobId: number) => `r/task/${pad(jobId)}/`,
  /** Per-file completion of a copy: value is the target key's size. */
  restoreFileDone: (jobId: number, targetKey: string) => `r/done/${pad(jobId)}/${targetKey}`,
  restoreFileDonePrefix: (jobId: number) => `r/done/${pad(jobId)}/`,
  /** Target collection name → job (a name being restored into is taken). */
  restoreTarget: (name: string) => `r/target/${name}`,
  /** Snapshot → unfinished restore jobs reading it (value is empty); `dropSnapshot` checks it for `IN_USE`. */
  restoreSnapshotUse: (snapshotId: number, jobId: number) => `r/snap-use/${pad(snapshotId)}/${pad(jobId)}`,
  restoreSnapshotUsePrefix: (snapshotId: number) => `r/snap-use/${pad(snapshotId)}/`,
  /** Snapshot → how many `restoreSnapshotUse` keys it has (absent: none). */
  restoreSnapshotUses: (snapshotId: number) => `r/snap-uses/${pad(snapshotId)}`,

  // snapshots (appended)
  /**
   * Secondary index: collection → its snapshots, any state (value is empty). A create
   * reads the newest committed one to reuse the manifests of unchanged segments.
   */
  collectionSnapshot: (collectionId: number, snapshotId: number) => `s/coll-snap/${pad(collectionId)}/${pad(snapshotId)}`,
  collectionSnapshotPrefix: (collectionId: number) => `s/coll-snap/${pad(collectionId)}/`,
  /** Prefix of every manifest reference (see `manifestRef`). */
  manifestRefAllPrefix: 's/ref-manifest/',
  /**
   * Change counter bumped by every create that reuses the manifests a snapshot lists
   * (value: decimal). Dropping that snapshot `get`s it, so on stores with shared
   * conditional batches a concurrent reuse conflicts instead of being missed.
   */
  snapshotReuse: (snapshotId: number) => `s/reuse/${pad(snapshotId)}`,

  // restore jobs (appended)
  /**
   * A restore job copied every file of the segment at `ordinal` (its index in the
   * snapshot's segment list) and counted it in the job's progress (value is empty).
   */
  restoreSegmentDone: (jobId: number, ordinal: number) => `r/seg-done/${pad(jobId)}/${pad(ordinal)}`,
  restoreSegmentDonePrefix: (jobId: number) => `r/seg-done/${pad(jobId)}/`,

  // catalog (appended)
  /**
   * An index, text or JSON-key index build that a newer build replaced on its segment
   * (value: `DroppedBuildRecord`, with the files), kept until GC collects the files.
   */
  droppedBuild: (buildId: number) => `c/dropped-build/${pad(buildId)}`,
  droppedBuildPrefix: 'c/dropped-build/',
  /**
   * Change counter of a collection's segment set and index definitions (value: decimal).
   * Operations that decide from a range read of those `get` it, and operations that change
   * them bump it, so that on stores with shared conditional batches a concurrent change
   * conflicts (and is retried) instead of being missed.
   */
  collectionVersion: (collectionId: number) => `c/coll-ver/${pad(collectionId)}`,
})
