import { describe, expect, it } from 'vitest'
import { RepositoryFiles } from '../../src/repository/export.js'
import { RepositoryStore } from '../../src/repository/repository-store.js'
import { MemoryObjects } from '../helpers/memory-objects.js'
import { overrideObjects } from '../helpers/override-objects.js'

/** An export asks the repository what it holds by one listing or by a HEAD per key, whichever costs fewer requests. */
describe('RepositoryFiles', () => {
  async function setup(extra = 0, keepAllListed?: number): Promise<{ calls: string[]; files: RepositoryFiles }> {
    const objects = new MemoryObjects()
    await objects.put('repo/files/ab/abc', new Uint8Array(3))
    await objects.put('repo/files/cd/cde', new Uint8Array(5))
    for (let i = 0; i < extra; i++) await objects.put(`repo/files/ff/f${i}`, new Uint8Array(1))
    const calls: string[] = []
    const store = overrideObjects(objects, {
      head: (key: string) => {
        calls.push(`head ${key}`)
        return objects.head(key)
      },
      list: (prefix: string) => {
        calls.push('list')
        return objects.list(prefix)
      },
    })
    return { calls, files: new RepositoryFiles(new RepositoryStore(store, 'repo'), keepAllListed) }
  }

  it('lists once when the repository is small for the keys to check', async () => {
    const { calls, files } = await setup()
    await files.prepare(10, new Set(), undefined)
    expect([await files.has('files/ab/abc', 3, undefined), await files.has('files/ab/abc', 4, undefined), await files.has('files/cd/cdx', 3, undefined)]).toEqual([true, false, false])
    expect(calls).toEqual(['list'])
  })

  it('stops listing once the listing has cost as many requests as a HEAD per key, and asks per key', async () => {
    // 2 candidates: a listing of more than 1,000 objects (2 pages) costs more than 2 HEADs.
    const { calls, files } = await setup(1_000)
    await files.prepare(2, new Set(), undefined)
    expect([await files.has('files/ab/abc', 3, undefined), await files.has('files/cd/cdx', 3, undefined)]).toEqual([true, false])
    expect(calls).toEqual(['list', 'head repo/files/ab/abc', 'head repo/files/cd/cdx'])
  })

  it('beyond the keys it keeps, it keeps the wanted ones (absent when not listed) and asks HEAD for the others', async () => {
    const { calls, files } = await setup(5, 1)
    await files.prepare(10, new Set(['files/cd/cde', 'files/zz/wanted']), undefined)
    expect(await files.has('files/ab/abc', 3, undefined)).toBe(true) // kept: the first listed
    expect(await files.has('files/cd/cde', 5, undefined)).toBe(true) // kept: wanted
    expect(await files.has('files/zz/wanted', 1, undefined)).toBe(false) // wanted, not listed: absent
    expect(await files.has('files/ff/f3', 1, undefined)).toBe(true) // listed, not kept: asked
    expect(calls).toEqual(['list', 'head repo/files/ff/f3'])
  })
})
