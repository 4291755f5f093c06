import { describe, expect, it } from 'vitest'
import { RepositoryFiles } from '../../src/repository/export.js'
import { RepositoryStore } from '../../src/repository/repository-store.js'
import { MemoryObjects } from '../helpers/memory-objects.js'
import { overrideObjects } from '../helpers/override-objects.js'

/** An export asks the repository what it holds by one listing or by a HEAD per key, whichever costs fewer requests. */
describe('RepositoryFiles', () => {
  async function setup(): Promise<{ objects: MemoryObjects; calls: string[]; files: RepositoryFiles }> {
    const objects = new MemoryObjects()
    await objects.put('repo/files/ab/abc', new Uint8Array(3))
    const calls: string[] = []
    const store = overrideObjects(objects, {
      head: (key: string) => {
        calls.push('head')
        return objects.head(key)
      },
      list: (prefix: string) => {
        calls.push('list')
        return objects.list(prefix)
      },
    })
    return { objects, calls, files: new RepositoryFiles(new RepositoryStore(store, 'repo')) }
  }

  it('lists once when the repository is small for the keys to check', async () => {
    const { calls, files } = await setup()
    await files.prepare(10, 1, undefined)
    expect([await files.has('files/ab/abc', 3, undefined), await files.has('files/ab/abc', 4, undefined), await files.has('files/cd/cde', 3, undefined)]).toEqual([true, false, false])
    expect(calls).toEqual(['list'])
  })

  it('asks per key when listing the repository would cost more', async () => {
    const { calls, files } = await setup()
    await files.prepare(10, 1_000_000, undefined)
    expect([await files.has('files/ab/abc', 3, undefined), await files.has('files/cd/cde', 3, undefined)]).toEqual([true, false])
    expect(calls).toEqual(['head', 'head'])
  })
})
