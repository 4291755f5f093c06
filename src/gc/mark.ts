import { throwIfAborted } from '../errors.js'
import type { Catalog } from '../meta/catalog.js'
import type { SegmentFile, SegmentInfo } from '../catalog-types.js'
import type { DroppedIndexRecord } from '../meta/catalog-gc.js'
import type { DroppedBuildRecord, DroppedCollectionRecord, DroppedPartitionRecord } from '../meta/records.js'
import type { SnapshotMark } from '../snapshot/snapshot-refs.js'
import { segmentFiles } from '../meta/segment-files.js'
import type { AbortOptions } from '../types.js'

/**
 * The mark phase of GC: what the catalog still needs, what it has dropped, and what
 * snapshots and unfinished restore jobs reference. Everything here only reads.
 * @internal
 */

/** Reads what every snapshot references (see `SnapshotReferences`). */
export type SnapshotMarkSource = (options: AbortOptions) => Promise<SnapshotMark>

/** Streams every key an unfinished restore job reads or writes. */
export type RestoreKeysSource = (options: AbortOptions) => AsyncIterable<string>

/**
 * A group of files the catalog dropped together, collected (or kept) as one:
 * - `segment`: every file of a dropped segment (also the segments of a dropped collection);
 * - `indexBuild`: a build of a dropped index definition on a segment that is not dropped;
 * - `replacedBuild`: a build a newer build of the same index replaced on its segment.
 */
export interface DroppedUnit {
  kind: 'segment' | 'indexBuild' | 'replacedBuild'
  collectionId: number
  segmentId: number
  /** Build ID of an `indexBuild` or `replacedBuild`. */
  buildId?: number
  /** Index ID of an `indexBuild`. */
  indexId?: number
  /** Build IDs the unit's files belong to (the `segment` kind's index, text and JSON-key builds). */
  buildIds: number[]
  /** Drop time as the catalog recorded it (never a file's mtime). */
  droppedAt: number
  files: SegmentFile[]
}

/** What the catalog says, read in one pass over its records. */
export interface CatalogMark {
  /** Files of segments that are not dropped, except builds of dropped index definitions. */
  liveKeys: Set<string>
  /** Every key any catalog record names, live or dropped: never an orphan. */
  knownKeys: Set<string>
  /** Dropped segments, dropped-index builds and replaced builds, in that order. */
  units: DroppedUnit[]
  /** Dropped index definitions. */
  droppedIndexes: DroppedIndexRecord[]
  /** Per dropped index (`indexRef(collectionId, indexId)`), the segments still holding a build of it. */
  indexHolders: Map<string, Set<number>>
  /** Per collection and partition (`indexRef(collectionId, partitionId)`), the segments with a record. */
  partitionHolders: Map<string, Set<number>>
  /** Dropped collections not forgotten yet. */
  droppedCollections: DroppedCollectionRecord[]
  /** Dropped partitions not forgotten yet. */
  droppedPartitions: DroppedPartitionRecord[]
}

/** Identifies an index definition across collections (restored collections reuse index IDs). */
export function indexRef(collectionId: number, indexId: number): string {
  return `${collectionId}/${indexId}`
}

/** The build IDs a segment's files belong to. */
export function segmentBuildIds(s: Pick<SegmentInfo, 'indexes' | 'textIndexes' | 'jsonKeyIndexes'>): number[] {
  const out = new Set<number>()
  for (const ix of s.indexes ?? []) out.add(ix.buildId)
  for (const t of s.textIndexes ?? []) out.add(t.buildId)
  for (const j of s.jsonKeyIndexes ?? []) out.add(j.buildId)
  return [...out]
}

function addAll(into: Set<string>, files: readonly SegmentFile[]): void {
  for (const f of files) into.add(f.key)
}

/** Reads the catalog: live keys, known keys and every dropped unit with its drop time. */
export async function markCatalog(catalog: Catalog, options: AbortOptions = {}): Promise<CatalogMark> {
  const { signal } = options
  throwIfAborted(signal)
  const droppedIndexes = await catalog.listDroppedIndexes({ signal })
  const droppedIndexAt = new Map(droppedIndexes.map((r) => [indexRef(r.collectionId, r.id), r.droppedAt]))
  const liveKeys = new Set<string>()
  const knownKeys = new Set<string>()
  const segmentUnits: DroppedUnit[] = []
  const indexUnits: DroppedUnit[] = []
  const indexHolders = new Map<string, Set<number>>()
  const partitionHolders = new Map<string, Set<number>>()
  for await (const s of catalog.listAllSegments({ signal })) {
    const partition = indexRef(s.collectionId, s.partitionId)
    let inPartition = partitionHolders.get(partition)
    if (inPartition === undefined) partitionHolders.set(partition, (inPartition = new Set()))
    inPartition.add(s.id)
    for (const ix of s.indexes ?? []) {
      const ref = indexRef(s.collectionId, ix.indexId)
      if (!droppedIndexAt.has(ref)) continue
      let holders = indexHolders.get(ref)
      if (holders === undefined) indexHolders.set(ref, (holders = new Set()))
      holders.add(s.id)
    }
    if (s.state === 'dropped') {
      const files = [...segmentFiles(s)].map((f) => f.file)
      addAll(knownKeys, files)
      segmentUnits.push({
        kind: 'segment',
        collectionId: s.collectionId,
        segmentId: s.id,
        buildIds: segmentBuildIds(s),
        // A dropped segment always carries its drop time; fall back to its creation for old records.
        droppedAt: s.droppedAt ?? s.createdAt,
        files,
      })
      continue
    }
    const deadBuilds = new Set<number>()
    for (const ix of s.indexes ?? []) {
      const droppedAt = droppedIndexAt.get(indexRef(s.collectionId, ix.indexId))
      if (droppedAt === undefined) continue
      deadBuilds.add(ix.buildId)
      addAll(knownKeys, ix.files)
      indexUnits.push({
        kind: 'indexBuild',
        collectionId: s.collectionId,
        segmentId: s.id,
        buildId: ix.buildId,
        indexId: ix.indexId,
        buildIds: [ix.buildId],
        droppedAt,
        files: ix.files,
      })
    }
    for (const { cls, file, buildId } of segmentFiles(s)) {
      if (cls === 'index' && buildId !== undefined && deadBuilds.has(buildId)) continue
      liveKeys.add(file.key)
      knownKeys.add(file.key)
    }
  }
  throwIfAborted(signal)
  const replacedUnits = (await catalog.listDroppedBuilds({ signal })).map((r: DroppedBuildRecord): DroppedUnit => {
    addAll(knownKeys, r.files)
    return {
      kind: 'replacedBuild',
      collectionId: r.collectionId,
      segmentId: r.segmentId,
      buildId: r.buildId,
      indexId: r.indexId,
      buildIds: [r.buildId],
      droppedAt: r.droppedAt,
      files: r.files,
    }
  })
  const droppedCollections = await catalog.listDroppedCollections({ signal })
  const droppedPartitions = await catalog.listDroppedPartitions({ signal })
  return { liveKeys, knownKeys, units: [...segmentUnits, ...indexUnits, ...replacedUnits], droppedIndexes, indexHolders, partitionHolders, droppedCollections, droppedPartitions }
}

/** What snapshots and restore jobs reference. */
export interface ReferenceMark {
  /** What every snapshot record references. */
  snapshots: SnapshotMark
  /** Every data key of a committed snapshot, plus every key an unfinished restore job reads or writes. */
  referencedKeys: Set<string>
}

/**
 * Reads snapshot references and restore keys. Call it after {@link markCatalog}: a
 * snapshot pins only segments and builds that were not dropped when it pinned them (see
 * the pin invariant in `snapshot/snapshot-create.ts`), so reading the records after the
 * catalog sees the pin of every unit the catalog mark found dropped.
 */
export async function markReferences(snapshots: SnapshotMarkSource, restoreKeys: RestoreKeysSource, options: AbortOptions = {}): Promise<ReferenceMark> {
  const { signal } = options
  throwIfAborted(signal)
  const mark = await snapshots({ signal })
  const referencedKeys = new Set<string>(mark.committedFiles.keys())
  for await (const key of restoreKeys({ signal })) referencedKeys.add(key)
  return { snapshots: mark, referencedKeys }
}

/**
 * Keys the catalog names and unfinished restore jobs touch, read again just before
 * orphans are deleted: a file the host recorded (or a restore began writing) after the
 * first mark is no orphan.
 */
export async function markKnownAgain(catalog: Catalog, restoreKeys: RestoreKeysSource, options: AbortOptions = {}): Promise<Set<string>> {
  const { signal } = options
  const known = new Set<string>()
  for await (const key of restoreKeys({ signal })) known.add(key)
  for await (const s of catalog.listAllSegments({ signal })) for (const { file } of segmentFiles(s)) known.add(file.key)
  for (const r of await catalog.listDroppedBuilds({ signal })) addAll(known, r.files)
  return known
}
