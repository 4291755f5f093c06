import { spawn } from 'node:child_process'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureBuilt as ensureDistBuilt } from '../helpers/dist-build.js'

/** The package root. */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))
/** The built binary, as `npm install` links it (`bin.vecsnap`). */
export const BIN = join(ROOT, 'dist', 'cli', 'vecsnap.js')

/**
 * Builds `dist/cli/vecsnap.js` with `npm run build` unless it is newer than every source
 * file (test/helpers/dist-build.ts: one build at a time across test files). The CLI bundle
 * is judged on its own: a failure elsewhere in the build (another entry) does not fail the
 * CLI tests as long as the binary was rebuilt.
 */
export async function ensureBuilt(): Promise<void> {
  await ensureDistBuilt(['dist/cli/vecsnap.js'])
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
