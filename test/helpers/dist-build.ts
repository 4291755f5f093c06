import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

/** The package root. */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))

/** The package entries (package.json `exports`), each built as ESM and CJS. */
export const ENTRIES = ['index', 'etcd', 's3', 'conformance'] as const
/** Every file the package's `exports` point at. */
export const ENTRY_OUTPUTS: readonly string[] = ENTRIES.flatMap((e) => [`dist/${e}.js`, `dist/${e}.cjs`, `dist/${e}.d.ts`, `dist/${e}.d.cts`])

/** What the build reads: a change to any of these makes `dist/` stale. */
const SOURCES = ['src', 'test/conformance', 'tsup.config.ts', 'package.json', 'tsconfig.json']
const LOCK = join(ROOT, '.tmp', 'build.lock')

async function newestMtime(path: string): Promise<number> {
  const s = await stat(path).catch(() => undefined)
  if (s === undefined) return 0
  if (!s.isDirectory()) return s.mtimeMs
  let newest = 0
  for (const entry of await readdir(path)) newest = Math.max(newest, await newestMtime(join(path, entry)))
  return newest
}

/** The oldest mtime of `outputs` (relative to the root), 0 when one is missing. */
async function oldestMtime(outputs: readonly string[]): Promise<number> {
  let oldest = Infinity
  for (const out of outputs) oldest = Math.min(oldest, await stat(join(ROOT, out)).then((s) => s.mtimeMs, () => 0))
  return oldest
}

async function isFresh(outputs: readonly string[]): Promise<boolean> {
  let newest = 0
  for (const source of SOURCES) newest = Math.max(newest, await newestMtime(join(ROOT, source)))
  return (await oldestMtime(outputs)) > newest
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes the cross-process build lock (test files run in parallel forks, and two
 * `npm run build`s would delete each other's `dist/`). A lock left by a dead process is taken over.
 */
async function lock(): Promise<() => Promise<void>> {
  await mkdir(join(ROOT, '.tmp'), { recursive: true })
  for (;;) {
    try {
      await mkdir(LOCK)
      await writeFile(join(LOCK, 'pid'), String(process.pid))
      return () => rm(LOCK, { recursive: true, force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const owner = Number(await readFile(join(LOCK, 'pid'), 'utf8').catch(() => ''))
    const age = await stat(LOCK).then((s) => Date.now() - s.mtimeMs, () => 0)
    // No pid yet: the owner is between mkdir and writeFile, unless that was long ago.
    if ((owner > 0 && !isAlive(owner)) || (owner === 0 && age > 10_000)) await rm(LOCK, { recursive: true, force: true })
    else await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * Runs `npm run build` once unless every one of `outputs` (paths relative to the root,
 * e.g. `dist/index.cjs`) is newer than every source. Concurrent callers wait for one
 * build. Throws with the build's output when it did not produce all of `outputs`, so a
 * failure in another entry does not fail tests that only need these.
 */
export async function ensureBuilt(outputs: readonly string[]): Promise<void> {
  if (await isFresh(outputs)) return
  const unlock = await lock()
  try {
    if (await isFresh(outputs)) return
    const started = Date.now()
    let output = ''
    try {
      const r = await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT, maxBuffer: 16 << 20 })
      output = r.stdout + r.stderr
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? '') + String((err as { stderr?: string }).stderr ?? err)
    }
    if ((await oldestMtime(outputs)) < started - 1000) throw new Error(`npm run build did not produce ${outputs.join(', ')}:\n${output}`)
  } finally {
    await unlock()
  }
}
