/**
 * The bench harness: `npm run bench [-- --filter <name>] [--quick] [--out <file>] [--merge] [--list]`.
 *
 * Runs the registered benches (bench/registry.ts), prints one table row per figure and
 * writes them to `bench/results.json` (an array of `{ name, value, unit, baseline, ratio,
 * target, pass }`), so results can be compared run to run. `--filter` takes a substring
 * of a bench name (repeat it or separate names by commas); `--quick` runs a small size;
 * `--merge` keeps entries of benches that did not run; `--strict` exits non-zero when a
 * target is missed.
 */
import { constants } from 'node:fs'
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benches } from './registry.js'
import type { BenchContext, BenchResult } from './types.js'

interface Args {
  filters: string[]
  quick: boolean
  out: string
  merge: boolean
  list: boolean
  strict: boolean
  /** Where benches put their data (default: the OS temp directory). */
  dir: string
}

const here = dirname(fileURLToPath(import.meta.url))

function parseArgs(argv: string[]): Args {
  const args: Args = { filters: [], quick: false, out: join(here, 'results.json'), merge: false, list: false, strict: false, dir: tmpdir() }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]
      if (v === undefined) throw new TypeError(`Expected a value after \`${a}\``)
      return v
    }
    if (a === '--quick') args.quick = true
    else if (a === '--merge') args.merge = true
    else if (a === '--list') args.list = true
    else if (a === '--strict') args.strict = true
    else if (a === '--filter' || a.startsWith('--filter=')) args.filters.push(...value().split(',').filter(Boolean))
    else if (a === '--out' || a.startsWith('--out=')) args.out = resolve(value())
    else if (a === '--dir' || a.startsWith('--dir=')) args.dir = resolve(value())
    else if (a === '--help' || a === '-h') {
      console.log('usage: npm run bench -- [--filter <name>] [--quick] [--dir <data dir>] [--out <file>] [--merge] [--strict] [--list]')
      process.exit(0)
    } else throw new TypeError(`Unknown argument \`${a}\``)
  }
  return args
}

function fmt(v: number | null): string {
  if (v === null) return '-'
  if (Number.isInteger(v)) return String(v)
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3)
}

/** Renders results as an aligned text table. */
export function table(results: readonly BenchResult[]): string {
  const header = ['name', 'value', 'unit', 'baseline', 'ratio', 'target', 'pass']
  const rows = results.map((r) => [r.name, fmt(r.value), r.unit, fmt(r.baseline), fmt(r.ratio), r.target ?? '-', r.pass === null ? '-' : r.pass ? 'PASS' : 'FAIL'])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === 1 || i === 3 || i === 4 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const selected = benches.filter((b) => args.filters.length === 0 || args.filters.some((f) => b.name.includes(f)))
  if (args.list) {
    for (const b of benches) console.log(`${b.name.padEnd(24)} ${b.description}`)
    return
  }
  if (selected.length === 0) throw new Error(`No bench matches ${args.filters.join(', ')}; try --list`)
  const dirs: string[] = []
  const ctx: BenchContext = {
    quick: args.quick,
    async tmpDir(label) {
      const dir = await mkdtemp(join(args.dir, `vecsnap-bench-${label.replace(/[^A-Za-z0-9_-]/g, '_')}-`))
      dirs.push(dir)
      return dir
    },
    async memDir(label) {
      const writable = await access('/dev/shm', constants.W_OK).then(() => true, () => false)
      const dir = await mkdtemp(join(writable ? '/dev/shm' : args.dir, `vecsnap-bench-${label.replace(/[^A-Za-z0-9_-]/g, '_')}-`))
      dirs.push(dir)
      return dir
    },
    log(message) {
      process.stderr.write(`${message}\n`)
    },
  }
  const results: BenchResult[] = []
  try {
    for (const b of selected) {
      ctx.log(`▶ ${b.name}${args.quick ? ' (quick)' : ''}: ${b.description}`)
      const started = performance.now()
      results.push(...(await b.run(ctx)))
      ctx.log(`  done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    }
  } finally {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  }
  let out: BenchResult[] = results
  if (args.merge) {
    const previous = await readFile(args.out, 'utf8').then((t) => JSON.parse(t) as BenchResult[], () => [] as BenchResult[])
    const ran = new Set(selected.map((b) => b.name))
    out = [...previous.filter((r) => !ran.has(r.name.split('/')[0])), ...results]
  }
  await writeFile(args.out, `${JSON.stringify(out, null, 2)}\n`)
  console.log(table(results))
  console.log(`\nwrote ${out.length} result(s) to ${args.out}`)
  if (args.strict && results.some((r) => r.pass === false)) process.exitCode = 1
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
