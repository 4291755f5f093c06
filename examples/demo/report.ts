import type { SearchHit } from '../tiny-vector-db/index.js'

/** Results of the fixed queries: one list of hits per query. */
export type QueryResults = SearchHit[][]

/** Queries whose hits differ (ids or distances, in order) between `a` and `b`. */
export function differingQueries(a: QueryResults, b: QueryResults): number[] {
  const out: number[] = []
  for (let q = 0; q < Math.max(a.length, b.length); q++) {
    const x = a[q] ?? []
    const y = b[q] ?? []
    const same = x.length === y.length && x.every((h, i) => h.id === y[i].id && h.distance === y[i].distance)
    if (!same) out.push(q)
  }
  return out
}

/** Formats one query's hits compactly: `id:distance id:distance …`. */
export function formatHits(hits: readonly SearchHit[], max = 5): string {
  const shown = hits.slice(0, max).map((h) => `${h.id}:${h.distance.toFixed(3)}`)
  return shown.join(' ') + (hits.length > max ? ' …' : '')
}

/** Milliseconds with a unit that reads well. */
export function ms(value: number): string {
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`
}

/** A two-or-more-column text table; the first column left-aligned, the rest right-aligned. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('   ')
  return [line(header), widths.map((w) => '─'.repeat(w)).join('   '), ...rows.map(line)].join('\n')
}
