import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Index, MetricKind } from 'usearch'

/** Parameters of a segment's HNSW index, as recorded in the catalog's index definition. */
export interface HnswParams {
  /** Vector dimension. */
  dimensions: number
  /** Graph degree (M). @default 16 */
  connectivity: number
  /** Candidate list size while building (efConstruction); 0 lets usearch choose. @default 0 */
  expansionAdd: number
  /** Candidate list size while searching (ef); 0 lets usearch choose. @default 0 */
  expansionSearch: number
}

/** Turns an index definition's string params into {@link HnswParams}. */
export function hnswParams(dimensions: number, params: Record<string, string> = {}): HnswParams {
  const int = (name: string, fallback: number): number => {
    const value = params[name] === undefined ? fallback : Number(params[name])
    if (!Number.isInteger(value) || value < 0) throw new TypeError(`Expected index param \`${name}\` to be an integer ≥ 0, got \`${params[name]}\``)
    return value
  }
  return { dimensions, connectivity: int('M', 16), expansionAdd: int('efConstruction', 0), expansionSearch: int('ef', 0) }
}

function newIndex(p: HnswParams): Index {
  return new Index({
    metric: MetricKind.L2sq,
    dimensions: p.dimensions,
    connectivity: p.connectivity,
    expansion_add: p.expansionAdd,
    expansion_search: p.expansionSearch,
  } as ConstructorParameters<typeof Index>[0])
}

/** Runs `fn` with a fresh temporary file path, removed afterwards (usearch serializes through files). */
async function withTmpFile<T>(fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'tiny-vector-db-'))
  try {
    return await fn(join(dir, 'index.usearch'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * Builds an HNSW index (squared L2) over `vectors` (row-major, `rows × dimensions`) and
 * returns its serialized bytes. Keys are row offsets within the segment, so the primary
 * key of a hit is `pks[key]`.
 */
export async function buildHnsw(vectors: Float32Array, p: HnswParams): Promise<Uint8Array> {
  const rows = vectors.length / p.dimensions
  const index = newIndex(p)
  if (rows > 0) {
    const keys = new BigUint64Array(rows)
    for (let i = 0; i < rows; i++) keys[i] = BigInt(i)
    index.add(keys, vectors, 0)
  }
  return withTmpFile(async (path) => {
    index.save(path)
    return new Uint8Array(await readFile(path))
  })
}

/** Loads serialized index bytes back into a searchable usearch index. */
export async function loadHnsw(bytes: Uint8Array, p: HnswParams): Promise<Index> {
  const index = newIndex(p)
  await withTmpFile(async (path) => {
    await writeFile(path, bytes)
    index.load(path)
  })
  return index
}

/** One hit inside a segment: the row offset and its squared L2 distance. */
export interface RowHit {
  row: number
  distance: number
}

/** Top-`k` rows of a loaded index for one query vector. */
export function searchHnsw(index: Index, query: Float32Array, k: number): RowHit[] {
  const size = index.size()
  if (size === 0 || k <= 0) return []
  const matches = index.search(query, Math.min(k, size), 0)
  const hits: RowHit[] = []
  for (let i = 0; i < matches.keys.length; i++) hits.push({ row: Number(matches.keys[i]), distance: matches.distances[i] })
  return hits
}

/** Exact top-`k` over raw vectors (segments without an index, and growing data). */
export function searchExact(vectors: Float32Array, dimensions: number, query: Float32Array, k: number, skip?: (row: number) => boolean): RowHit[] {
  const rows = vectors.length / dimensions
  const hits: RowHit[] = []
  for (let r = 0; r < rows; r++) {
    if (skip?.(r)) continue
    let d = 0
    const base = r * dimensions
    for (let j = 0; j < dimensions; j++) {
      const x = vectors[base + j] - query[j]
      d += x * x
    }
    hits.push({ row: r, distance: Math.fround(d) })
  }
  hits.sort((a, b) => a.distance - b.distance || a.row - b.row)
  return hits.slice(0, k)
}
