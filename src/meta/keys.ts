/**
 * Every MetaStore key vecsnap writes, in one place, grouped by area:
 *
 * | prefix | area | written by |
 * |---|---|---|
 * | `v/` | the layout version | `SnapshotManager.open()` |
 * | `c/` | the catalog: collections, partitions, indexes, segments, IDs | `Catalog`, restore, GC |
 * | `s/` | snapshot records and their per-collection indexes | the snapshot store |
 * | `r/` | restore jobs, tasks and their progress | restore |
 * | `l/` | the loop runner's election (etcd only, lease-bound, never through the MetaStore) | `EtcdLeadership` |
 *
 * IDs are zero-padded to 16 digits so that key order is numeric order. A host may share
 * the MetaStore as long as it stays out of these prefixes. No value grows with the number
 * of segments: per-segment lists of snapshots live in the ObjectStore (see
 * `snapshot/snapshot-list.ts`), so every record stays small at any scale.
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

/** The MetaStore layout this build writes and reads (`keys.layoutVersion`). */
export const META_LAYOUT_VERSION = 2

export const keys = Object.freeze({
  // ── layout ──────────────────────────────────────────────────────────────────
  /** The MetaStore layout version (decimal); `open()` refuses a store of another one. */
  layoutVersion: 'v/layout',
  /**
   * A random ID of this MetaStore (a UUID), written by the first export: repository
   * entries name their source by it, so that an export skips only files of its own source.
   */
  storeId: 'v/store-id',

  // ── catalog: IDs ────────────────────────────────────────────────────────────
  /** The persistent ID allocator: the first ID no process has reserved yet. */
  nextId: 'c/next-id',

  // ── catalog: collections and partitions ─────────────────────────────────────
  collection: (id: number) => `c/coll/${pad(id)}`,
  collectionPrefix: 'c/coll/',
  collectionName: (name: string) => `c/coll-name/${name}`,
  /**
   * Change counter of a collection's segment set and index definitions (decimal).
   * Operations that decide from a range read of those read it, and operations that change
   * them bump it, so that on stores with shared conditional batches a concurrent change
   * conflicts (and is retried) instead of being missed.
   */
  collectionVersion: (collectionId: number) => `c/coll-ver/${pad(collectionId)}`,
  /**
   * Drop epoch of a collection (decimal): bumped by every change that drops a segment, a
   * partition, the collection or an index build, or replaces a build. A snapshot create
   * reads it before its scan and commits only if it is unchanged, so what it pins cannot
   * have been dropped between its read and its pin (see `snapshot/snapshot-create.ts`).
   * Flushes, new segments and deltalogs do not bump it.
   */
  dropEpoch: (collectionId: number) => `c/drop-epoch/${pad(collectionId)}`,
  /**
   * What the drop that set epoch `epoch` dropped (value: `{ segments: [...] }`, or
   * `{ all: true }` when it may concern any segment). A create whose commit finds the epoch
   * moved reads the entries since its scan and scans again only when one concerns a segment
   * it captured. The newest `DROP_LOG_KEPT` entries are kept.
   */
  dropLog: (collectionId: number, epoch: number) => `c/drop-log/${pad(collectionId)}/${pad(epoch)}`,
  dropLogPrefix: (collectionId: number) => `c/drop-log/${pad(collectionId)}/`,
  /** Dropped collection kept for GC (value: `{ id, name, droppedAt }`); its segments count as dropped at that time. */
  droppedCollection: (id: number) => `c/coll-dropped/${pad(id)}`,
  droppedCollectionPrefix: 'c/coll-dropped/',
  /** Dropped partition kept for GC (value: `{ collectionId, partitionId, name, droppedAt }`); its segments count as dropped. */
  droppedPartition: (collectionId: number, partitionId: number) => `c/part-dropped/${pad(collectionId)}/${pad(partitionId)}`,
  droppedPartitionPrefix: (collectionId: number) => `c/part-dropped/${pad(collectionId)}/`,
  droppedPartitionAllPrefix: 'c/part-dropped/',

  // ── catalog: indexes ────────────────────────────────────────────────────────
  /** Index definitions, including dropped ones (`droppedAt` set) until GC forgets them. */
  index: (collectionId: number, indexId: number) => `c/index/${pad(collectionId)}/${pad(indexId)}`,
  indexPrefix: (collectionId: number) => `c/index/${pad(collectionId)}/`,
  indexAllPrefix: 'c/index/',
  /**
   * An index, text or JSON-key index build that a newer build replaced on its segment
   * (value: `DroppedBuildRecord`, with the files), kept until GC collects the files.
   */
  droppedBuild: (buildId: number) => `c/dropped-build/${pad(buildId)}`,
  droppedBuildPrefix: 'c/dropped-build/',

  // ── catalog: segments ───────────────────────────────────────────────────────
  segment: (id: number) => `c/seg/${pad(id)}`,
  segmentPrefix: 'c/seg/',
  /**
   * Secondary index: collection → its segments. The value is what a snapshot captures of
   * the segment (`storedCapture` in format/segment-capture.ts): one range read gives a
   * create everything it records.
   */
  collectionSegment: (collectionId: number, segmentId: number) => `c/coll-seg/${pad(collectionId)}/${pad(segmentId)}`,
  collectionSegmentPrefix: (collectionId: number) => `c/coll-seg/${pad(collectionId)}/`,

  // ── snapshots ───────────────────────────────────────────────────────────────
  /** The snapshot record (small, see `SnapshotRecord`). */
  snapshot: (id: number) => `s/snap/${pad(id)}`,
  snapshotPrefix: 's/snap/',
  snapshotName: (name: string) => `s/name/${name}`,
  /** Secondary index: collection → its snapshots, any state (value is empty). */
  collectionSnapshot: (collectionId: number, snapshotId: number) => `s/coll-snap/${pad(collectionId)}/${pad(snapshotId)}`,
  collectionSnapshotPrefix: (collectionId: number) => `s/coll-snap/${pad(collectionId)}/`,
  /**
   * Change counter of the set of a collection's snapshots that list manifests (decimal):
   * bumped when a create pins (its list may reuse manifests of a committed snapshot) and
   * when a drop marks a snapshot `deleting`. Both read it, so a create never commits a
   * reuse of manifests that a concurrent drop has decided to delete.
   */
  snapshotSetVersion: (collectionId: number) => `s/coll-snap-ver/${pad(collectionId)}`,

  /** Holds on a committed snapshot (value: JSON `[{ tag, expiresAt? }]`); `dropSnapshot` reads it. */
  snapshotHolds: (snapshotId: number) => `s/holds/${pad(snapshotId)}`,
  snapshotHoldsPrefix: 's/holds/',

  // ── restore jobs ────────────────────────────────────────────────────────────
  restoreJob: (id: number) => `r/job/${pad(id)}`,
  restoreJobPrefix: 'r/job/',
  restoreTask: (jobId: number, taskId: number) => `r/task/${pad(jobId)}/${pad(taskId)}`,
  restoreTaskPrefix: (jobId: number) => `r/task/${pad(jobId)}/`,
  /** Per-file completion of a copy: value is the target key's size. */
  restoreFileDone: (jobId: number, targetKey: string) => `r/done/${pad(jobId)}/${targetKey}`,
  restoreFileDonePrefix: (jobId: number) => `r/done/${pad(jobId)}/`,
  /**
   * A restore job copied every file of the segment at `ordinal` (its index in the
   * snapshot's segment list) and counted it in the job's progress (value is empty).
   */
  restoreSegmentDone: (jobId: number, ordinal: number) => `r/seg-done/${pad(jobId)}/${pad(ordinal)}`,
  restoreSegmentDonePrefix: (jobId: number) => `r/seg-done/${pad(jobId)}/`,
  /** Target collection name → job (a name being restored into is taken). */
  restoreTarget: (name: string) => `r/target/${name}`,
  /** Snapshot → unfinished restore jobs reading it (value is empty); `dropSnapshot` checks it for `IN_USE`. */
  restoreSnapshotUse: (snapshotId: number, jobId: number) => `r/snap-use/${pad(snapshotId)}/${pad(jobId)}`,
  restoreSnapshotUsePrefix: (snapshotId: number) => `r/snap-use/${pad(snapshotId)}/`,
  restoreSnapshotUseAllPrefix: 'r/snap-use/',
  /** Snapshot → how many `restoreSnapshotUse` keys it has (absent: none). */
  restoreSnapshotUses: (snapshotId: number) => `r/snap-uses/${pad(snapshotId)}`,
  restoreSnapshotUsesPrefix: 'r/snap-uses/',

  // ── schedules ───────────────────────────────────────────────────────────────
  /** Schedule name → its definition and last run (`ScheduleRecord`). */
  schedule: (name: string) => `p/sched/${name}`,
  schedulePrefix: 'p/sched/',
})
