import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

/**
 * The README's quick start runs as written: the block after the `quick-start` marker is
 * saved into an empty directory (with `vecsnap` resolving to this checkout's source) and
 * run with tsx; what it prints is what its comments say.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const run = promisify(execFile)

describe('the README quick start', () => {
  it('runs as written and prints what its comments say', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8')
    const at = readme.indexOf('<!-- quick-start:')
    expect(at).toBeGreaterThan(-1)
    const start = readme.indexOf('```ts\n', at) + '```ts\n'.length
    const code = readme.slice(start, readme.indexOf('\n```', start))
    const dir = await mkdtemp(join(tmpdir(), 'vecsnap-quick-start-'))
    try {
      await writeFile(join(dir, 'quick-start.ts'), code)
      await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
      await writeFile(
        join(dir, 'tsconfig.json'),
        JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', baseUrl: '.', paths: { vecsnap: [join(root, 'src/index.ts')] } } }),
      )
      const tsx = join(root, 'node_modules/tsx/dist/cli.mjs')
      const { stdout } = await run(process.execPath, [tsx, 'quick-start.ts'], { cwd: dir, timeout: 60_000 })
      const lines = stdout.trim().split('\n')
      expect(lines[0]).toBe('1 2')
      expect(lines).toContain('restore 100%')
      expect(lines).toContain('completed')
      expect(lines.at(-1)).toMatch(/^2 files\/insert_log\/\d+\/\d+\/\d+\/100\/1$/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 90_000)
})
