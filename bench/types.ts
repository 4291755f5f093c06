/**
 * Types of the bench harness. A bench is a module exporting a {@link Bench}; register it
 * in `bench/registry.ts`.
 */

/** One figure of a bench run, as written to `bench/results.json`. */
export interface BenchResult {
  /** Stable name, `<bench>/<figure>`, so runs can be compared. */
  name: string
  value: number
  /** Unit of `value` and `baseline`: `ms`, `count`, `MB`, … */
  unit: string
  /** What `value` is compared with (measured in the same run), or null. */
  baseline: number | null
  /** `value / baseline`, or null without a baseline. */
  ratio: number | null
  /** The target as text, e.g. `ratio <= 1.5` or `value <= 100`; null when only informative. */
  target: string | null
  /** Whether the target is met; null when there is no target. */
  pass: boolean | null
  /** The machine the figure was measured on (`os.cpus().length` × model, memory, platform). Set by the harness. */
  machine?: string
  /** When it was measured (ISO 8601). Set by the harness. */
  date?: string
}

/** What the harness hands every bench. */
export interface BenchContext {
  /** `--quick`: a small size, for smoke runs and CI. */
  readonly quick: boolean
  /** A fresh temporary directory, removed when the harness exits. */
  tmpDir(label: string): Promise<string>
  /**
   * A fresh temporary directory in memory (`/dev/shm`) when the machine has one, else like
   * `tmpDir`: for figures that compare two MetaStores, not the disk's writeback.
   */
  memDir(label: string): Promise<string>
  /** Progress output (stderr), so the table on stdout stays clean. */
  log(message: string): void
}

/** A registered benchmark. */
export interface Bench {
  /** Name used by `--filter` (substring match) and as the prefix of its results. */
  name: string
  /** One line on what it measures. */
  description: string
  run(ctx: BenchContext): Promise<BenchResult[]>
}

/** Options of {@link result}. */
export interface ResultInput {
  name: string
  value: number
  unit: string
  baseline?: number | null
  /** Pass when `ratio <= maxRatio`. */
  maxRatio?: number
  /** Pass when `ratio >= minRatio`. */
  minRatio?: number
  /** Pass when `value <= maxValue`. */
  maxValue?: number
  /** Pass when `value >= minValue`. */
  minValue?: number
}

function round(n: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** Builds a {@link BenchResult}, computing the ratio and whether the target is met. */
export function result(input: ResultInput): BenchResult {
  const baseline = input.baseline ?? null
  const ratio = baseline !== null && baseline > 0 ? round(input.value / baseline, 3) : null
  const targets: string[] = []
  let pass: boolean | null = null
  const check = (ok: boolean, text: string): void => {
    targets.push(text)
    pass = (pass ?? true) && ok
  }
  if (input.maxRatio !== undefined) check(ratio !== null && ratio <= input.maxRatio, `ratio <= ${input.maxRatio}`)
  if (input.minRatio !== undefined) check(ratio !== null && ratio >= input.minRatio, `ratio >= ${input.minRatio}`)
  if (input.maxValue !== undefined) check(input.value <= input.maxValue, `value <= ${input.maxValue}`)
  if (input.minValue !== undefined) check(input.value >= input.minValue, `value >= ${input.minValue}`)
  return {
    name: input.name,
    value: round(input.value, 3),
    unit: input.unit,
    baseline: baseline === null ? null : round(baseline, 3),
    ratio,
    target: targets.length === 0 ? null : targets.join(' and '),
    pass,
  }
}

/** Milliseconds `fn` takes. */
export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

/** The median of `values`. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
