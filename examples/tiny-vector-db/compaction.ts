import type { Catalog, ObjectStore, SegmentInfo } from '../../src/index.js'
import { reserveId } from './ids.js'
import { buildSegmentIndex } from './index-builder.js'
import type { SegmentCache } from './segment-cache.js'
import { readPks, readVectors, writeSegmentFiles } from './segment-io.js'
import type { CollectionContext, CompactionResult } from './types.js'

/** A segment as compaction sees it. */
export interface CompactionCandidate {
  segment: SegmentInfo
  /** Rows not deleted. */
  live: number
  deleted: number
}

/** Share of deleted rows at which a segment is rewritten on its own to purge them. */
export const PURGE_RATIO = 0.2

/**
 * Plans merges: segments with at most `maxRows / 2` live rows are grouped in ID order
 * while the group stays within `maxRows` (groups of two or more are merged), and any
 * other segment with at least {@link PURGE_RATIO} of its rows deleted is rewritten alone.
 * Segments of different partitions are never merged.
 */
export function planCompaction(candidates: readonly CompactionCandidate[], maxRows: number): CompactionCandidate[][] {
  const plans: CompactionCandidate[][] = []
  const byPartition = new Map<number, CompactionCandidate[]>()
  for (const c of [...candidates].sort((a, b) => a.segment.id - b.segment.id)) {
    const list = byPartition.get(c.segment.partitionId) ?? []
    list.push(c)
    byPartition.set(c.segment.partitionId, list)
  }
  for (const list of byPartition.values()) {
    const leftovers: CompactionCandidate[] = []
    let group: CompactionCandidate[] = []
    let groupRows = 0
    const close = (): void => {
      if (group.length >= 2) plans.push(group)
      else leftovers.push(...group)
      group = []
      groupRows = 0
    }
    for (const c of list) {
      if (c.live > maxRows / 2) {
        leftovers.push(c)
        continue
      }
      if (groupRows + c.live > maxRows) close()
      group.push(c)
      groupRows += c.live
    }
    close()
    for (const c of leftovers) if (c.deleted > 0 && c.deleted >= PURGE_RATIO * c.segment.numRows) plans.push([c])
  }
  return plans
}

/**
 * Merges `sources` into one new segment without their deleted rows: writes its binlogs,
 * swaps it in with `catalog.compact` (atomic: the sources become `dropped`), then builds
 * its HNSW index when the collection has one.
 */
export async function compactSegments(
  catalog: Catalog,
  objects: ObjectStore,
  cache: SegmentCache,
  c: CollectionContext,
  sources: readonly SegmentInfo[],
): Promise<CompactionResult> {
  const parts = await Promise.all(
    sources.map(async (s) => ({ pks: await readPks(objects, s, c.pkFieldId), vectors: await readVectors(objects, s, c.vectorFieldId), deleted: await cache.deleted(s) })),
  )
  let live = 0
  for (const p of parts) for (const pk of p.pks) if (!p.deleted.has(pk)) live++
  const pks = new BigInt64Array(live)
  const vectors = new Float32Array(live * c.dim)
  let row = 0
  for (const p of parts) {
    for (let i = 0; i < p.pks.length; i++) {
      if (p.deleted.has(p.pks[i])) continue
      pks[row] = p.pks[i]
      vectors.set(p.vectors.subarray(i * c.dim, (i + 1) * c.dim), row * c.dim)
      row++
    }
  }
  // Keys need a segment ID before the catalog allocates the result's (see ids.ts).
  const slot = await reserveId(catalog)
  const files = await writeSegmentFiles(catalog, objects, c, { id: slot, partitionId: sources[0].partitionId }, { pks, vectors })
  const result = await catalog.compact({ collection: c.info.name, sources: sources.map((s) => s.id), result: { numRows: live, ...files } })
  if (c.index !== undefined && live > 0) await buildSegmentIndex(catalog, objects, c, c.index, result, vectors)
  const total = sources.reduce((n, s) => n + s.numRows, 0)
  return { sources: sources.map((s) => s.id), segmentId: result.id, numRows: live, purgedRows: total - live }
}
