import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { DEFAULTS } from '../../src/options.js'
import { FILE_CONCURRENCY } from '../../src/restore/copy-worker.js'
import { result, type Bench, type BenchContext, type BenchResult } from '../types.js'

const run = promisify(execFile)
const child = fileURLToPath(new URL('./restore-rss-child.ts', import.meta.url))
const MB = 1024 * 1024
/** Copies a restore runs in flight with default options; the floor loop runs as many. */
const COPY_WIDTH = DEFAULTS.restoreConcurrency * FILE_CONCURRENCY

/** What the restore child reports (bytes, milliseconds). */
interface RestoreFigures {
  baseRss: number
  peakRss: number
  baseAnon?: number
  peakAnon?: number
  peakHeap: number
  baseHeapUsed: number
  liveHeapAfter: number
  ms: number
  segments: number
  state: string
  /** Peaks by phase: `accept`, `tasks`, `copying` (see the child). */
  phases?: Record<string, { ms: number; peakRss: number; peakHeapUsed: number; peakHeapTotal: number }>
}

/** Runs the child script with `args` (and extra node flags / environment); resolves its stdout. */
async function runChild(ctx: BenchContext, args: string[], flags: string[] = [], env: Record<string, string> = {}): Promise<string> {
  const p = run(process.execPath, ['--expose-gc', ...flags, '--import', 'tsx', child, ...args], { maxBuffer: 16 * MB, env: { ...process.env, ...env } })
  p.child.stderr?.on('data', (d: Buffer) => ctx.log(d.toString().trimEnd()))
  return (await p).stdout
}

async function restoreRun(ctx: BenchContext, dir: string, target: string, flags: string[] = [], env: Record<string, string> = {}): Promise<RestoreFigures> {
  const out = JSON.parse((await runChild(ctx, ['restore', dir, target], flags, env)).trim().split('\n').at(-1) as string) as RestoreFigures
  const label = flags.length + Object.keys(env).length === 0 ? 'defaults' : [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...flags].join(' ')
  ctx.log(
    `  [${label}] restored ${out.segments} segments in ${(out.ms / 1000).toFixed(1)} s; RSS ${(out.baseRss / MB).toFixed(0)} → peak ${(out.peakRss / MB).toFixed(0)} MB` +
      (out.baseAnon === undefined ? '' : `, anonymous ${(out.baseAnon / MB).toFixed(0)} → ${((out.peakAnon as number) / MB).toFixed(0)} MB`) +
      `, V8 heap peak ${(out.peakHeap / MB).toFixed(0)} MB, live heap ${(out.baseHeapUsed / MB).toFixed(1)} → ${(out.liveHeapAfter / MB).toFixed(1)} MB`,
  )
  const phases = Object.entries(out.phases ?? {}).map(
    ([name, p]) =>
      `${name} ${(p.ms / 1000).toFixed(1)} s: RSS +${((p.peakRss - out.baseRss) / MB).toFixed(0)} MB, heap used ${(p.peakHeapUsed / MB).toFixed(0)} / total ${(p.peakHeapTotal / MB).toFixed(0)} MB`,
  )
  if (phases.length > 0) ctx.log(`    peaks by phase: ${phases.join('; ')}`)
  return out
}

/**
 * SPEC section 10: RSS growth of a process restoring a snapshot of 100k small segments
 * (< 100 MB). Seeding runs in one process, the restore in a fresh one, so the figure is
 * only what the restore adds. A second restore of the same snapshot runs with V8's young
 * generation held to 1 MB semi-spaces, a capped old space and two malloc arenas, to show
 * how much of the growth is GC headroom and allocator slack rather than data the restore
 * keeps (informational; the small young generation makes V8 scavenge and promote more,
 * which costs time: see `time-tuned-runtime`).
 *
 * The baseline is the `floor` child: no vecsnap, only the file-system calls a restore of
 * these segments cannot avoid (read the manifest, make the directory, link, stat), as many
 * in flight as a restore runs. Its growth is what Node itself takes for that much async
 * work (mostly its young generation growing from 1 to 16 MB semi-spaces), so the ratio
 * shows what vecsnap adds on top.
 */
async function runRss(ctx: BenchContext): Promise<BenchResult[]> {
  const segments = ctx.quick ? 10_000 : 100_000
  const dir = await ctx.tmpDir('restore-rss')
  const t = performance.now()
  await runChild(ctx, ['seed', dir, String(segments)])
  ctx.log(`  seeded and snapshotted ${segments} segments in ${((performance.now() - t) / 1000).toFixed(1)} s`)
  const floorOut = JSON.parse((await runChild(ctx, ['floor', dir, String(COPY_WIDTH)])).trim().split('\n').at(-1) as string) as RestoreFigures
  const floor = (floorOut.peakRss - floorOut.baseRss) / MB
  ctx.log(`  [floor: bare file-system loop, ${COPY_WIDTH} in flight] ${segments} segments in ${(floorOut.ms / 1000).toFixed(1)} s; RSS ${(floorOut.baseRss / MB).toFixed(0)} → peak ${(floorOut.peakRss / MB).toFixed(0)} MB`)
  const plain = await restoreRun(ctx, dir, 'restored')
  const tuned = await restoreRun(ctx, dir, 'restored_tuned', ['--max-semi-space-size=1', '--max-old-space-size=64'], { MALLOC_ARENA_MAX: '2' })
  for (const out of [plain, tuned]) {
    if (out.state !== 'completed' || out.segments !== segments) throw new Error(`restore ended ${out.state} with ${out.segments} segments`)
  }
  const results = [
    result({ name: `restore-rss/growth-${segments}-segments`, value: (plain.peakRss - plain.baseRss) / MB, unit: 'MB', baseline: floor, maxValue: 40 }),
    result({ name: `restore-rss/floor-bare-fs-loop-${segments}-segments`, value: floor, unit: 'MB', baseline: null }),
  ]
  if (plain.baseAnon !== undefined && plain.peakAnon !== undefined) {
    // Without file-backed pages (LevelDB maps its table files; those pages are page cache).
    results.push(result({ name: `restore-rss/anon-growth-${segments}-segments`, value: (plain.peakAnon - plain.baseAnon) / MB, unit: 'MB', baseline: null }))
  }
  results.push(
    // What the restore keeps: live V8 heap after it, less live heap before it (both after a full GC).
    result({ name: `restore-rss/live-heap-growth-${segments}-segments`, value: (plain.liveHeapAfter - plain.baseHeapUsed) / MB, unit: 'MB', baseline: null }),
    result({ name: `restore-rss/growth-tuned-runtime-${segments}-segments`, value: (tuned.peakRss - tuned.baseRss) / MB, unit: 'MB', baseline: null }),
    result({ name: `restore-rss/time-${segments}-segments`, value: plain.ms, unit: 'ms', baseline: null }),
    result({ name: `restore-rss/time-tuned-runtime-${segments}-segments`, value: tuned.ms, unit: 'ms', baseline: plain.ms }),
  )
  return results
}

/** SPEC section 10: restore memory at 100k segments. */
export const restoreRssBench: Bench = {
  name: 'restore-rss',
  description: 'RSS growth of a fresh process restoring 100k small segments (target < 40 MB)',
  run: runRss,
}
