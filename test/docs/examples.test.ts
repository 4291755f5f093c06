import { execFile } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

/** The multi-node example runs (or says why it skips) and finds the same search results on the restored copy. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

describe('examples/multi-node.ts', () => {
  it('restores on machine B what machine A wrote, over etcd and S3', async () => {
    const tsx = join(root, 'node_modules/tsx/dist/cli.mjs')
    const { stdout } = await promisify(execFile)(process.execPath, [tsx, 'examples/multi-node.ts'], { cwd: root, timeout: 90_000 })
    if (/skipped/.test(stdout)) {
      console.warn(stdout.trim())
      return
    }
    expect(stdout).toMatch(/completed: 4 segments copied server-side .* same search results: yes/)
  }, 120_000)
})
