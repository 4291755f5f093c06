import type { Index } from 'usearch'
import { searchExact, searchHnsw, type RowHit } from './hnsw.js'
import type { SearchHit } from './types.js'

/** What one segment contributes to a search. */
export interface SegmentSearchInput {
  pks: BigInt64Array
  deleted: ReadonlySet<bigint>
  /** The segment's HNSW index, or undefined to scan `vectors`. */
  index?: Index
  vectors?: Float32Array
  dim: number
}

/**
 * Top-`k` live rows of one segment. An index search over-fetches by the number of
 * deleted rows, so that `k` live rows survive the filter.
 */
export function searchSegment(s: SegmentSearchInput, query: Float32Array, k: number): SearchHit[] {
  let rows: RowHit[]
  if (s.index !== undefined) {
    rows = searchHnsw(s.index, query, Math.min(k + s.deleted.size, s.pks.length))
  } else if (s.vectors !== undefined) {
    rows = searchExact(s.vectors, s.dim, query, k, s.deleted.size === 0 ? undefined : (row) => s.deleted.has(s.pks[row]))
  } else {
    throw new Error('a segment search needs an index or vectors')
  }
  const hits: SearchHit[] = []
  for (const r of rows) {
    const id = s.pks[r.row]
    if (!s.deleted.has(id)) hits.push({ id, distance: r.distance })
  }
  return hits.slice(0, k)
}

/** Global top-`k` of per-segment results: by distance, ties by primary key. */
export function mergeTopK(perSegment: readonly SearchHit[][], k: number): SearchHit[] {
  const all = perSegment.flat()
  all.sort((a, b) => a.distance - b.distance || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  return all.slice(0, k)
}
