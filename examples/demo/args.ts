import { parseArgs } from 'node:util'

/** Flags of `npm run demo -- [flags]`. */
export interface DemoArgs {
  /** Rows inserted before the snapshot. @default 50000 */
  rows: number
  /** Vector dimension. @default 128 */
  dim: number
  /** Flushes (segments) the rows are inserted in. @default 5 */
  flushes: number
  /** Fixed queries run before the snapshot and on the restored collection. @default 20 */
  queries: number
  /** Top-k of each query. @default 10 */
  k: number
  /** Keep the data directory (and print how to point the CLI at it). @default false */
  keep: boolean
  /** Objects in a local S3 server (s3rver, in-process) instead of a directory. @default false */
  s3: boolean
  /** Where the fresh data directory goes. @default ./demo-data/<timestamp> */
  dir: string | undefined
}

export const USAGE = `usage: npm run demo -- [--rows 50000] [--dim 128] [--flushes 5] [--queries 20] [--k 10] [--s3] [--keep] [--dir <path>]

  --rows N      rows inserted before the snapshot (default 50000)
  --dim N       vector dimension (default 128)
  --flushes N   flushes (= segments) the rows are inserted in (default 5)
  --queries N   fixed queries compared before and after restore (default 20)
  --k N         top-k per query (default 10)
  --s3          keep objects in s3rver started in-process on 127.0.0.1 instead of a directory
  --keep        keep the data directory afterwards (inspect it with the vecsnap CLI)
  --dir PATH    data directory to create (default ./demo-data/<timestamp>)`

function int(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < min) throw new TypeError(`Expected \`--${name}\` to be an integer ≥ ${min}, got \`${raw}\``)
  return n
}

/** Parses the demo's flags (`process.argv.slice(2)`). */
export function parseDemoArgs(argv: string[]): DemoArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: 'string' },
      dim: { type: 'string' },
      flushes: { type: 'string' },
      queries: { type: 'string' },
      k: { type: 'string' },
      keep: { type: 'boolean', default: false },
      s3: { type: 'boolean', default: false },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.help === true) return 'help'
  const args: DemoArgs = {
    rows: int('rows', values.rows, 50_000, 10),
    dim: int('dim', values.dim, 128, 2),
    flushes: int('flushes', values.flushes, 5, 1),
    queries: int('queries', values.queries, 20, 1),
    k: int('k', values.k, 10, 1),
    keep: values.keep === true,
    s3: values.s3 === true,
    dir: values.dir,
  }
  if (args.flushes > args.rows) throw new TypeError(`Expected \`--flushes\` (${args.flushes}) to be at most \`--rows\` (${args.rows})`)
  return args
}
