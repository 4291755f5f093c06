import type { SegmentInfo } from '../../src/index.js'
import type { SegmentRows } from './segment-io.js'

/**
 * Rows inserted into a `growing` segment and not flushed yet. They live in memory (a
 * real database would also log them to a WAL); `flush` writes them as binlogs.
 */
export class GrowingSegment {
  readonly segment: SegmentInfo
  readonly dim: number
  #pks: BigInt64Array[] = []
  #vectors: Float32Array[] = []
  #rows = 0
  #packed: SegmentRows | undefined

  constructor(segment: SegmentInfo, dim: number) {
    this.segment = segment
    this.dim = dim
  }

  /** Rows buffered. */
  get rows(): number {
    return this.#rows
  }

  /** Appends rows (copied). */
  append(pks: BigInt64Array, vectors: Float32Array): void {
    this.#pks.push(pks.slice())
    this.#vectors.push(vectors.slice())
    this.#rows += pks.length
    this.#packed = undefined
  }

  /** Every buffered row, as two contiguous columns. */
  rowsData(): SegmentRows {
    if (this.#packed === undefined) {
      const pks = new BigInt64Array(this.#rows)
      const vectors = new Float32Array(this.#rows * this.dim)
      let offset = 0
      for (let i = 0; i < this.#pks.length; i++) {
        pks.set(this.#pks[i], offset)
        vectors.set(this.#vectors[i], offset * this.dim)
        offset += this.#pks[i].length
      }
      this.#pks = [pks]
      this.#vectors = [vectors]
      this.#packed = { pks, vectors }
    }
    return this.#packed
  }

  /** Removes the rows whose primary key is in `ids`; returns how many were removed. */
  remove(ids: ReadonlySet<bigint>): number {
    const { pks, vectors } = this.rowsData()
    const keep: number[] = []
    for (let i = 0; i < pks.length; i++) if (!ids.has(pks[i])) keep.push(i)
    const removed = pks.length - keep.length
    if (removed === 0) return 0
    const nextPks = new BigInt64Array(keep.length)
    const nextVectors = new Float32Array(keep.length * this.dim)
    keep.forEach((row, i) => {
      nextPks[i] = pks[row]
      nextVectors.set(vectors.subarray(row * this.dim, (row + 1) * this.dim), i * this.dim)
    })
    this.#pks = [nextPks]
    this.#vectors = [nextVectors]
    this.#rows = keep.length
    this.#packed = { pks: nextPks, vectors: nextVectors }
    return removed
  }
}
