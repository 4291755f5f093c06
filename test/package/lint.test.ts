/**
 * The packed package passes publint (package.json fields, `exports`, files) and
 * Are the Types Wrong (types for `import` and `require` of every entry). attw runs with the
 * `node16` profile: the package needs Node ≥ 20 and has subpath `exports`, which TypeScript's
 * legacy `node10` resolution cannot see.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { ENTRY_OUTPUTS, ensureBuilt, ROOT } from '../helpers/dist-build.js'

const BIN = join(ROOT, 'node_modules', '.bin')
let dir = ''
let tarball = ''

/** Runs a tool; resolves with its exit code and output instead of rejecting. */
async function run(command: string, args: readonly string[]): Promise<{ code: number; output: string }> {
  try {
    const r = await promisify(execFile)(command, args, { cwd: ROOT, maxBuffer: 16 << 20, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } })
    return { code: 0, output: r.stdout + r.stderr }
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? String(err)}` }
  }
}

beforeAll(async () => {
  await ensureBuilt(ENTRY_OUTPUTS)
  dir = await mkdtemp(join(tmpdir(), 'vecsnap-pack-'))
  const packed = await run('npm', ['pack', '--json', '--pack-destination', dir])
  if (packed.code !== 0) throw new Error(`npm pack failed:\n${packed.output}`)
  const [{ filename }] = JSON.parse(packed.output.slice(packed.output.indexOf('['))) as [{ filename: string }]
  tarball = join(dir, filename)
}, 120_000)

afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true })
})

it('passes publint --strict', async () => {
  const r = await run(join(BIN, 'publint'), ['run', tarball, '--strict'])
  expect(r.code, r.output).toBe(0)
})

it('passes attw --profile node16 for every entry, imported and required', async () => {
  const r = await run(join(BIN, 'attw'), [tarball, '--profile', 'node16', '--format', 'table-flipped', '--no-emoji', '--no-color'])
  expect(r.code, r.output).toBe(0)
  for (const entry of ['"vecsnap"', '"vecsnap/s3"', '"vecsnap/etcd"', '"vecsnap/conformance"']) expect(r.output).toContain(entry)
})
