/**
 * Deterministic demo data: a seeded PRNG, so every run (and the re-insert baseline) sees
 * the same vectors and the same queries.
 */

/** mulberry32: a small, fast, seeded 32-bit PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `count` random vectors of `dim` floats in [0, 1), row-major. */
export function randomVectors(count: number, dim: number, seed: number): Float32Array {
  const next = prng(seed)
  const out = new Float32Array(count * dim)
  for (let i = 0; i < out.length; i++) out[i] = next()
  return out
}

/** Primary keys `first, first + 1, …` (`count` of them). */
export function sequentialIds(first: number, count: number): BigInt64Array {
  const out = new BigInt64Array(count)
  for (let i = 0; i < count; i++) out[i] = BigInt(first + i)
  return out
}

/** Rows `[from, to)` of a row-major matrix. */
export function rowsOf(vectors: Float32Array, dim: number, from: number, to: number): Float32Array {
  return vectors.subarray(from * dim, to * dim)
}
