import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { DEFAULTS } from '../../src/options.js'
import { FILE_CONCURRENCY } from '../../src/restore/copy-worker.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { median, result, timeMs, type Bench, type BenchContext, type BenchResult } from '../types.js'

const run = promisify(execFile)

/** Bytes per object: small, so the figures are the syncs' cost, not the bytes'. */
const OBJECT_BYTES = 256
/** Objects per directory (a segment's directory holds a few to a few hundred files). */
const PER_DIR = 100
/** Copies in flight, as a restore runs them (`restoreConcurrency × FILE_CONCURRENCY`). */
const COPY_WIDTH = DEFAULTS.restoreConcurrency * FILE_CONCURRENCY

/** Flushes what earlier rounds left dirty, so no round pays for another's writeback. */
async function settle(): Promise<void> {
  await run('sync')
}

/** Runs `fn` on `items` with `width` calls in flight. */
async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++])
    }),
  )
}

const keysOf = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}/${Math.floor(i / PER_DIR)}/${i}`)

/** One round of the object figures on a fresh root: puts one by one, then links and byte copies of them. */
async function objectRound(ctx: BenchContext, fsync: boolean, puts: number, copies: number): Promise<{ put: number; link: number; copy: number }> {
  const dir = await ctx.tmpDir(`durability-${fsync ? 'fsync' : 'nofsync'}`)
  const objects = new FsObjectStore({ root: join(dir, 'objects'), fsync })
  const body = new Uint8Array(OBJECT_BYTES).fill(7)
  const sources = keysOf('files/src', puts)
  await settle()
  // A host writing its files one after another: each waits for its own syncs.
  const put = await timeMs(async () => {
    for (const key of sources) await objects.put(key, body)
  })
  await settle()
  const link = await timeMs(() => inParallel(sources.slice(0, copies), COPY_WIDTH, (key) => objects.copy(key, key.replace('files/src', 'files/link'), { mode: 'link', sizeBytes: OBJECT_BYTES })))
  await settle()
  const copy = await timeMs(() => inParallel(sources.slice(0, copies), COPY_WIDTH, (key) => objects.copy(key, key.replace('files/src', 'files/copy'), { mode: 'copy' })))
  return { put, link, copy }
}

/** One round of LevelMetaStore batches (one put each), one after another, as the catalog issues them. */
async function levelRound(ctx: BenchContext, sync: boolean, batches: number): Promise<number> {
  const dir = await ctx.tmpDir(`durability-level-${sync ? 'sync' : 'nosync'}`)
  const meta = new LevelMetaStore({ location: join(dir, 'meta'), sync })
  await meta.open()
  try {
    const value = 'x'.repeat(200)
    await settle()
    return await timeMs(async () => {
      for (let i = 0; i < batches; i++) await meta.batch([{ type: 'put', key: `c/k/${String(i).padStart(6, '0')}`, value }])
    })
  } finally {
    await meta.close()
  }
}

/**
 * What durability costs: `FsObjectStore` puts, links and byte copies, and `LevelMetaStore`
 * batches, with their `fsync`s (the defaults) against `fsync: false` / `sync: false`, in
 * the same run on the same disk (the OS temp directory, or `--dir`). Rounds alternate the
 * two sides. Informative: no targets, the ratio depends on the disk and its write cache.
 */
export const durabilityBench: Bench = {
  name: 'durability',
  description: 'FsObjectStore put/link/copy and LevelMetaStore batches, durable (default) vs fsync: false / sync: false',
  async run(ctx) {
    const puts = ctx.quick ? 400 : 2_000
    const copies = ctx.quick ? 200 : 1_000
    const batches = ctx.quick ? 200 : 1_000
    const rounds = ctx.quick ? 1 : 5
    const fs = { durable: { put: [] as number[], link: [] as number[], copy: [] as number[] }, fast: { put: [] as number[], link: [] as number[], copy: [] as number[] } }
    const level = { durable: [] as number[], fast: [] as number[] }
    for (let round = 1; round <= rounds; round++) {
      for (const durable of round % 2 === 1 ? [true, false] : [false, true]) {
        const r = await objectRound(ctx, durable, puts, copies)
        const side = durable ? fs.durable : fs.fast
        side.put.push(r.put)
        side.link.push(r.link)
        side.copy.push(r.copy)
        level[durable ? 'durable' : 'fast'].push(await levelRound(ctx, durable, batches))
        ctx.log(
          `  round ${round} ${durable ? 'durable' : 'no sync'}: put ${r.put.toFixed(0)} ms, link ${r.link.toFixed(0)} ms, copy ${r.copy.toFixed(0)} ms, level ${level[durable ? 'durable' : 'fast'].at(-1)!.toFixed(0)} ms`,
        )
      }
    }
    const out: BenchResult[] = []
    const figure = (name: string, durable: number[], fast: number[]) => {
      // The disk's other traffic moves both sides of a round together: the ratios of the two sides
      // of each round show that spread, the figure is the ratio of the medians.
      const ratios = durable.map((d, i) => (d / fast[i]).toFixed(2))
      ctx.log(`  ${name}: durable / no sync per round ${ratios.join(', ')}`)
      out.push(result({ name: `durability/${name}`, value: median(durable), unit: 'ms', baseline: median(fast) }))
    }
    figure(`fs-put-${puts}-sequential`, fs.durable.put, fs.fast.put)
    figure(`fs-link-${copies}-x${COPY_WIDTH}`, fs.durable.link, fs.fast.link)
    figure(`fs-copy-bytes-${copies}-x${COPY_WIDTH}`, fs.durable.copy, fs.fast.copy)
    figure(`level-batch-${batches}-sequential`, level.durable, level.fast)
    return out
  },
}
