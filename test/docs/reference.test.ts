import { execFile } from 'node:child_process'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

/**
 * The API reference cannot rot: TypeDoc (typedoc.json: every public export documented,
 * links valid, warnings are errors) runs over the entry points without writing anything,
 * and must succeed. `npm run docs` writes the same reference into docs/api/.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

describe('the API reference (TypeDoc)', () => {
  it('builds with no warning: every public export is documented', async () => {
    const typedoc = join(root, 'node_modules/typedoc/bin/typedoc')
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [typedoc, '--emit', 'none'], { cwd: root, timeout: 120_000 }).catch((err: { stdout: string; stderr: string }) => err)
    expect(`${stdout}${stderr}`).not.toMatch(/warning|error/i)
  }, 150_000)
})
