import { throwIfAborted } from '../errors.js'
import type { Catalog } from '../meta/catalog.js'
import type { SegmentFile, SegmentInfo } from '../meta/catalog-types.js'
import type { DroppedIndexRecord } from '../meta/catalog-gc.js'
import type { MetaStore } from '../meta/meta-store.js'
import type { DroppedBuildRecord, DroppedCollectionRecord } from '../meta/records.js'
import { segmentFiles } from '../meta/segment-files.js'
import { readPins, type PinnedIds } from '../meta/snapshot-refs.js'
import type { AbortOptions } from '../types.js'

/**
 * The mark phase of GC: what the catalog still needs, what it has dropped, and what
 * snapshots and unfinished restore jobs reference. Everything here only reads.
 * @internal
 */

/** A snapshot's reference to an object, as GC consumes it. */
export interface GcSnapshotFile {
  key: string
  /** Size in bytes as the snapshot recorded it. */
  size: number
  snapshotId: number
  state: 'pending' | 'committed' | 'deleting'
  /** `data`: a segment or index file; `snapshot`: its metadata JSON or a manifest. */
  kind?: 'data' | 'snapshot'
}

/** Streams every object referenced by a snapshot in any state. */
export type SnapshotFilesSource = (options: AbortOptions) => AsyncIterable<GcSnapshotFile>

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
  /** Dropped collections not forgotten yet. */
  droppedCollections: DroppedCollectionRecord[]
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
  for await (const s of catalog.listAllSegments({ signal })) {
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
  return { liveKeys, knownKeys, units: [...segmentUnits, ...indexUnits, ...replacedUnits], droppedIndexes, indexHolders, droppedCollections }
}

/** What snapshots and restore jobs reference. */
export interface ReferenceMark {
  /** Every data key a snapshot in any state lists, plus every key an unfinished restore job reads or writes. */
  referencedKeys: Set<string>
  /** Data keys of committed snapshots: each must exist, or GC aborts with `CORRUPT`. */
  committedKeys: Set<string>
  /** Metadata JSON keys of committed snapshots (checked for existence too). */
  committedMetadataKeys: Set<string>
  pins: PinnedIds
}

/** Reads snapshot references, the reference index and restore keys. */
export async function markReferences(
  meta: MetaStore,
  snapshotFiles: SnapshotFilesSource,
  restoreKeys: RestoreKeysSource,
  options: AbortOptions = {},
): Promise<ReferenceMark> {
  const { signal } = options
  throwIfAborted(signal)
  const referencedKeys = new Set<string>()
  const committedKeys = new Set<string>()
  const committedMetadataKeys = new Set<string>()
  // Pins first: a snapshot created after this read pins only segments that are live in the catalog.
  const pins = await readPins(meta, { signal })
  for await (const ref of snapshotFiles({ signal })) {
    if (ref.kind === 'snapshot') {
      if (ref.state === 'committed' && ref.key.endsWith('.json')) committedMetadataKeys.add(ref.key)
      continue
    }
    referencedKeys.add(ref.key)
    if (ref.state === 'committed') committedKeys.add(ref.key)
  }
  for await (const key of restoreKeys({ signal })) referencedKeys.add(key)
  return { referencedKeys, committedKeys, committedMetadataKeys, pins }
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
