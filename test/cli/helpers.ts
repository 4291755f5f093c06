import { execFile, spawn } from 'node:child_process'
import { readdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

/** The package root. */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
/** The built binary, as `npm install` links it (`bin.vecsnap`). */
export const BIN = join(ROOT, 'dist', 'cli', 'vecsnap.js')

async function newestMtime(dir: string): Promise<number> {
  let newest = 0
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, await newestMtime(path))
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, (await stat(path)).mtimeMs)
  }
  return newest
}

/**
 * Builds `dist/cli/vecsnap.js` with `npm run build` unless it is newer than every source
 * file. The CLI bundle is judged on its own: a failure elsewhere in the build (another
 * entry) does not fail the CLI tests as long as the binary was rebuilt.
 */
export async function ensureBuilt(): Promise<void> {
  const built = await stat(BIN).then((s) => s.mtimeMs, () => 0)
  if (built > (await newestMtime(join(ROOT, 'src')))) return
  const started = Date.now()
  let output = ''
  try {
    const r = await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT, maxBuffer: 16 << 20 })
    output = r.stdout + r.stderr
  } catch (err) {
    output = String((err as { stdout?: string }).stdout ?? '') + String((err as { stderr?: string }).stderr ?? err)
  }
  const after = await stat(BIN).then((s) => s.mtimeMs, () => 0)
  if (after < started - 1000) throw new Error(`npm run build did not produce ${BIN}:\n${output}`)
}

/** What one run of the binary did. */
export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the built `vecsnap` with `args` (stdout/stderr are pipes, so no progress bar). */
export function vecsnap(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolveRun, reject) => {
    const childEnv = { ...process.env, ...env }
    if (env.VECSNAP_DATA === undefined) delete childEnv.VECSNAP_DATA
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolveRun({ code, stdout, stderr }))
  })
}

/** Runs `vecsnap --data <dir> --json …args`, expects exit code 0 and parses stdout. */
export async function json<T>(dir: string, ...args: string[]): Promise<T> {
  const r = await vecsnap(['--data', dir, '--json', ...args])
  if (r.code !== 0) throw new Error(`vecsnap ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}
