import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { renderPrune, renderSpace } from '../../src/cli/render.js'
import { runRetentionExample } from '../../examples/retention.js'

/**
 * The README's retention and space tables are what the CLI prints for the history
 * examples/retention.ts builds: every line shown (the README elides runs with `…`) appears,
 * in order, in the rendering of the real reports.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** The lines of the ```text block after `<!-- marker: … -->`, without the command line and the elisions. */
function shownLines(readme: string, marker: string): string[] {
  const at = readme.indexOf(`<!-- ${marker}:`)
  expect(at).toBeGreaterThan(-1)
  const block = /```text\n([\s\S]*?)\n```/.exec(readme.slice(at))![1]
  return block.split('\n').filter((l) => !l.startsWith('$ ') && !l.startsWith('…'))
}

function expectInOrder(shown: string[], actual: string): void {
  const lines = actual.split('\n')
  let from = 0
  for (const line of shown) {
    const i = lines.indexOf(line, from)
    expect(i, `README line not printed (in this order): ${JSON.stringify(line)}`).toBeGreaterThanOrEqual(from)
    from = i + 1
  }
}

describe('README retention and space examples', () => {
  it('show what the CLI prints for examples/retention.ts', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8')
    const { dryRun, pruned, space } = await runRetentionExample()
    expect(pruned).toEqual({ ...dryRun, dryRun: false })
    expect(dryRun.kept).toHaveLength(30)
    expectInOrder(shownLines(readme, 'retention-example'), renderPrune(dryRun))
    expectInOrder(shownLines(readme, 'space-example'), renderSpace(space))
  }, 60_000)
})
