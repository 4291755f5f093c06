/**
 * The built package (`dist/`, through package.json `exports`): every entry shares one
 * SnapshotError per format, and SnapshotError recognises errors of another copy (the other
 * format, a second installed version) by its `Symbol.for` brand. The scenarios run in a
 * plain Node process (test/package/fixtures/probe.mjs), not through vitest's module runner.
 */
import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ENTRIES, ENTRY_OUTPUTS, ensureBuilt, ROOT } from '../helpers/dist-build.js'

const PROBE = join(ROOT, 'test', 'package', 'fixtures', 'probe.mjs')

async function probe(scenario: string, ...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(process.execPath, [PROBE, scenario, ...args], { cwd: ROOT, timeout: 20_000 })
  return JSON.parse(stdout) as Record<string, unknown>
}

/** The same facts for every key of `names`. */
function each<T>(names: readonly string[], facts: T): Record<string, T> {
  return Object.fromEntries(names.map((n) => [n, facts]))
}

const RECOGNISED = { instanceOf: true, is: true, isCode: true, isOtherCode: false }

let copyDir = ''

beforeAll(async () => {
  await ensureBuilt(ENTRY_OUTPUTS)
  // A second copy of the package, as npm installs when two dependants need different versions.
  // Under the root so that its dependencies resolve from the root's node_modules.
  await mkdir(join(ROOT, '.tmp'), { recursive: true })
  copyDir = await mkdtemp(join(ROOT, '.tmp', 'vecsnap-copy-'))
  await cp(join(ROOT, 'dist'), join(copyDir, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.map') })
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>
  await writeFile(join(copyDir, 'package.json'), JSON.stringify({ ...pkg, version: '0.0.1-copy' }))
}, 120_000)

afterAll(async () => {
  if (copyDir !== '') await rm(copyDir, { recursive: true, force: true })
})

describe('built package', () => {
  it('defines SnapshotError once per format, in a chunk every entry loads', async () => {
    const files = (await readdir(join(ROOT, 'dist'))).filter((f) => /\.c?js$/.test(f))
    const defining: string[] = []
    for (const file of files) {
      if (/\bSnapshotError = class\b|\bclass SnapshotError\b/.test(await readFile(join(ROOT, 'dist', file), 'utf8'))) defining.push(file)
    }
    expect(defining.filter((f) => f.endsWith('.js'))).toHaveLength(1)
    expect(defining.filter((f) => f.endsWith('.cjs'))).toHaveLength(1)
    for (const entry of ENTRIES) expect(defining).not.toContain(`${entry}.cjs`)
  })

  it('entries throw the root entry’s SnapshotError class, and the root’s guard keeps their codes', async () => {
    const facts = await probe('entries')
    expect(facts).toEqual(
      each(['cjs', 'esm'], {
        etcd: { code: 'NOT_OPEN', sameClass: true },
        s3: { code: 'INVALID_ARGUMENT', sameClass: true },
        etcdThroughCatalog: { code: 'NOT_OPEN', sameClass: true },
      }),
    )
  })

  it('EtcdMetaStore.open() against a dead endpoint rejects with a SnapshotError in both formats', async () => {
    const facts = await probe('deadEtcd')
    const seen = (format: 'cjs' | 'esm') => ({
      code: 'IO_ERROR',
      name: 'SnapshotError',
      cjs: { ...RECOGNISED, sameClass: format === 'cjs' },
      esm: { ...RECOGNISED, sameClass: format === 'esm' },
    })
    expect(facts).toEqual({ cjs: seen('cjs'), esm: seen('esm') })
  })

  it('SnapshotError classes of both formats and of a second installed copy recognise each other’s errors', async () => {
    const facts = await probe('brand', copyDir)
    const roots = ['esm', 'cjs', 'copyEsm', 'copyCjs']
    for (const name of roots) {
      expect(facts[name], name).toEqual({
        fields: ['NOT_FOUND', 'no snapshot "x"', 'x', 'inner', true],
        seenBy: Object.fromEntries(roots.map((by) => [by, { ...RECOGNISED, sameClass: by === name }])),
      })
    }
    expect(facts.strangers).toEqual([false, false, false, false, false])
  })

  it('a conditional-batch conflict made by another copy is retried, not rewritten as IO_ERROR', async () => {
    const facts = await probe('conflictRetry', copyDir)
    expect(Object.keys(facts)).toHaveLength(12)
    for (const [pair, result] of Object.entries(facts)) expect(result, pair).toEqual({ ok: true, batches: 2 })
  })
})
