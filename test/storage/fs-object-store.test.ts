import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { listKeys } from '../conformance/object-store.suite.js'

/** Makes `link` fail with this errno while set (e.g. EXDEV, as across devices). */
const linkFault = vi.hoisted(() => ({ code: undefined as string | undefined }))
/** Counts renames (a `fresh` put of a new key does none). */
const renames = vi.hoisted(() => ({ count: 0 }))
/** Runs once before the next `stat` of this path (e.g. a delete pruning it just then). */
const beforeStat = vi.hoisted(() => ({ path: undefined as string | undefined, run: undefined as (() => Promise<void>) | undefined }))

vi.mock('../../src/storage/fs-calls.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/storage/fs-calls.js')>()
  return {
    ...actual,
    link: async (from: string, to: string) => {
      if (linkFault.code !== undefined) throw Object.assign(new Error(`${linkFault.code}: injected, link '${from}' -> '${to}'`), { code: linkFault.code })
      return actual.link(from, to)
    },
    rename: async (from: string, to: string) => {
      renames.count++
      return actual.rename(from, to)
    },
    stat: async (path: string) => {
      const run = path === beforeStat.path ? beforeStat.run : undefined
      if (run !== undefined) {
        beforeStat.run = undefined
        await run()
      }
      return actual.stat(path)
    },
  }
})

const bytes = (s: string) => new TextEncoder().encode(s)
/**
 * Lets time pass, so files changed before are older (by their ctime, which no test can
 * set) than files changed after.
 */
const ageCtime = (ms = 300) => new Promise((r) => setTimeout(r, ms))
const code = (c: string) => expect.objectContaining({ code: c })

describe('FsObjectStore', () => {
  let dir: string
  let root: string
  let store: FsObjectStore
  const path = (key: string) => join(root, key)
  /** Temporary files anywhere under the root, as paths relative to it. */
  const tmpFiles = async () =>
    ((await readdir(root, { recursive: true }).catch(() => [])) as string[]).filter((p) => p.split('/').at(-1)!.startsWith('.vecsnap-tmp')).sort()

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vecsnap-fs-'))
    root = join(dir, 'objects')
    store = new FsObjectStore({ root })
  })

  afterEach(async () => {
    linkFault.code = undefined
    await rm(dir, { recursive: true, force: true })
  })

  describe('put', () => {
    it('stores key K at `${root}/K` and reports the file\'s size and the later of its mtime and ctime', async () => {
      const info = await store.put('files/a/b', bytes('hello'))
      const st = await stat(path('files/a/b'))
      const modified = Math.floor(Math.max(st.mtimeMs, st.ctimeMs))
      expect(info).toMatchObject({ key: 'files/a/b', size: 5 })
      // The rename into place may move the ctime on after the write.
      expect(info.lastModified).toBeLessThanOrEqual(modified)
      expect(modified - info.lastModified).toBeLessThan(1_000)
      expect(await store.head('files/a/b')).toEqual({ ...info, lastModified: modified })
      expect(store.root).toBe(root)
    })

    it('is atomic: concurrent readers see the old or the whole new object, never a part', async () => {
      const size = 2 * 1024 * 1024
      const bodies = [new Uint8Array(size).fill(0xaa), new Uint8Array(size).fill(0xbb)]
      let writing = true
      const writer = (async () => {
        try {
          for (let i = 0; i < 16; i++) await store.put('atomic', bodies[i % 2])
        } finally {
          writing = false
        }
      })()
      let reads = 0
      try {
        while (writing) {
          const got = await store.get('atomic')
          if (got === undefined) continue
          reads++
          expect(got.byteLength).toBe(size)
          expect(got[0] === 0xaa || got[0] === 0xbb).toBe(true)
          expect(got.every((b) => b === got[0])).toBe(true)
        }
      } finally {
        await writer
      }
      expect(reads).toBeGreaterThan(0)
      expect(await tmpFiles()).toEqual([])
    })

    it('writes a fresh put of a new key in place, and still replaces an existing key atomically', async () => {
      renames.count = 0
      const info = await store.put('fresh/a', bytes('first'), { fresh: true })
      expect(info).toMatchObject({ key: 'fresh/a', size: 5 })
      expect(Math.abs(info.lastModified - (await stat(path('fresh/a'))).mtimeMs)).toBeLessThan(1_000)
      expect(renames.count).toBe(0)
      const ino = (await stat(path('fresh/a'))).ino
      await store.put('fresh/a', bytes('second'), { fresh: true })
      expect(renames.count).toBe(1)
      expect((await stat(path('fresh/a'))).ino).not.toBe(ino)
      expect(Buffer.from((await store.get('fresh/a'))!).toString()).toBe('second')
      expect(await tmpFiles()).toEqual([])
    })

    it('never lists, nor accepts as keys, temporary files', async () => {
      await store.put('a', bytes('a'))
      await store.put('d/b', bytes('b'))
      await writeFile(join(root, '.vecsnap-tmp-stray'), 'partial')
      await writeFile(join(root, 'd', '.vecsnap-tmp-stray'), 'partial')
      expect(await listKeys(store)).toEqual(['a', 'd/b'])
      expect(await listKeys(store, 'd/')).toEqual(['d/b'])
      expect(await listKeys(store, '.vecsnap-tmp')).toEqual([])
      expect(await listKeys(store, 'd/.vecsnap-tmp')).toEqual([])
      for (const key of ['.vecsnap-tmp', '.vecsnap-tmp-stray', 'd/.vecsnap-tmp-stray', '.vecsnap-tmp/x']) {
        await expect(store.get(key)).rejects.toEqual(code('INVALID_ARGUMENT'))
        await expect(store.put(key, bytes('x'))).rejects.toEqual(code('INVALID_ARGUMENT'))
        await expect(store.copy('a', key)).rejects.toEqual(code('INVALID_ARGUMENT'))
        await expect(store.delete([key])).rejects.toEqual(code('INVALID_ARGUMENT'))
      }
      expect(await tmpFiles()).toEqual(['.vecsnap-tmp-stray', 'd/.vecsnap-tmp-stray'])
    })

    it('list() leaves temporary files alone, even old ones: a listing never writes', async () => {
      await store.put('d/e/x', bytes('x'))
      await writeFile(join(root, '.vecsnap-tmp-old'), 'left by a crash')
      await writeFile(join(root, 'd', 'e', '.vecsnap-tmp-old'), 'left by a crash')
      const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000)
      await ageCtime()
      for (const p of ['.vecsnap-tmp-old', 'd/e/.vecsnap-tmp-old']) await utimes(join(root, p), twoHoursAgo, twoHoursAgo)
      expect(await listKeys(store)).toEqual(['d/e/x'])
      expect(await listKeys(store, 'd/')).toEqual(['d/e/x'])
      expect(await tmpFiles()).toEqual(['.vecsnap-tmp-old', 'd/e/.vecsnap-tmp-old'])
    })

    it('removeStaleTempFiles() removes the temporary files unchanged for olderThanMs (an hour by default), and nothing else', async () => {
      await store.put('d/e/x', bytes('x'))
      await writeFile(join(root, 'd', '.vecsnap-tmp-old'), 'left by a crash')
      await writeFile(join(root, 'd', 'e', '.vecsnap-tmp-recent'), 'another writer, in flight')
      await mkdir(join(root, 'd', '.vecsnap-tmp-dir'))
      const old = '.vecsnap-tmp-old'
      await ageCtime()
      // An hour on the ctime is out of a test's reach: 'old' is older than 200 ms here.
      expect(await store.removeStaleTempFiles()).toBe(0)
      expect(await tmpFiles()).toEqual(['d/.vecsnap-tmp-dir', `d/${old}`, 'd/e/.vecsnap-tmp-recent'])
      await writeFile(join(root, 'd', 'e', '.vecsnap-tmp-recent'), 'still writing')
      expect(await store.removeStaleTempFiles({ olderThanMs: 200 })).toBe(1)
      expect(await tmpFiles()).toEqual(['d/.vecsnap-tmp-dir', 'd/e/.vecsnap-tmp-recent'])
      expect(await listKeys(store)).toEqual(['d/e/x'])
      await expect(store.removeStaleTempFiles({ olderThanMs: -1 })).rejects.toThrow(TypeError)
      await expect(store.removeStaleTempFiles({ signal: AbortSignal.abort() })).rejects.toEqual(code('ABORTED'))
      expect(await new FsObjectStore({ root: join(dir, 'absent') }).removeStaleTempFiles()).toBe(0)
    })

    it('removeStaleTempFiles() goes through directories of more entries than it reads at a time, and more temporary files than it removes at once', async () => {
      await store.put('big/keep', bytes('k'))
      for (let i = 0; i < 300; i++) {
        await mkdir(join(root, 'big', `s${i}`))
        await writeFile(join(root, 'big', `s${i}`, '.vecsnap-tmp-old'), 'left by a crash')
        if (i % 2 === 0) await writeFile(join(root, 'big', `.vecsnap-tmp-${i}`), 'left by a crash')
      }
      await store.put('big/s7/x', bytes('x'))
      await ageCtime()
      expect(await store.removeStaleTempFiles({ olderThanMs: 200 })).toBe(450)
      expect(await tmpFiles()).toEqual([])
      expect(await listKeys(store)).toEqual(['big/keep', 'big/s7/x'])
    })

    it('rejects IO_ERROR when a key would be both an object and a directory', async () => {
      await store.put('obj', bytes('file'))
      await expect(store.put('obj/child', bytes('x'))).rejects.toEqual(code('IO_ERROR'))
      await store.put('dir/child', bytes('x'))
      await expect(store.put('dir', bytes('x'))).rejects.toEqual(code('IO_ERROR'))
      expect(await listKeys(store)).toEqual(['dir/child', 'obj'])
      expect(await tmpFiles()).toEqual([])
    })

    it('survives deletes that remove the parent directory while it writes', async () => {
      for (let i = 1; i < 40; i++) {
        await Promise.all([store.put(`race/d/${i}`, bytes(String(i))), store.delete([`race/d/${i - 1}`])])
      }
      expect(await listKeys(store, 'race/')).toEqual(['race/d/39'])
    })

    it('creates directories again under parents a delete pruned after the store created them', async () => {
      await store.put('a/b/c/x', bytes('x'))
      await store.delete(['a/b/c/x'])
      // The store created a, a/b and a/b/c; the delete removed all three.
      await store.put('a/b/d/y', bytes('y'), { fresh: true })
      await store.put('a/b/c/z', bytes('z'))
      await store.copy('a/b/d/y', 'a/e/f/y', { sizeBytes: 1 })
      expect(await listKeys(store, 'a/')).toEqual(['a/b/c/z', 'a/b/d/y', 'a/e/f/y'])
    })

    it('makes a directory again when a delete prunes it just after another writer made it', async () => {
      await store.put('p/q/one', bytes('1'))
      await store.delete(['p/q/one'])
      await store.put('p/keep', bytes('k'))
      // The store still believes in p/q: creating p/q/r meets EEXIST from a concurrent writer's
      // p/q/r, which a delete prunes before the store can look at it.
      await mkdir(join(root, 'p/q/r'), { recursive: true })
      beforeStat.path = join(root, 'p/q/r')
      beforeStat.run = () => rm(join(root, 'p/q'), { recursive: true })
      await store.put('p/q/r/two', bytes('2'), { fresh: true })
      expect(beforeStat.run).toBeUndefined()
      expect(await listKeys(store, 'p/')).toEqual(['p/keep', 'p/q/r/two'])
    })
  })

  describe('putStream and getStream', () => {
    const chunks = async function* (...parts: Uint8Array[]) {
      yield* parts
    }

    it('writes into a temporary file next to the target while the body streams, then renames it', async () => {
      await store.put('s/x', bytes('old'))
      let during: string[] = []
      async function* body() {
        yield new Uint8Array(1024).fill(1)
        during = await tmpFiles()
        yield new Uint8Array(1024).fill(2)
      }
      const info = await store.putStream('s/x', body(), { sizeBytes: 2048 })
      expect(during).toHaveLength(1)
      expect(during[0]).toMatch(/^s\/\.vecsnap-tmp/)
      expect(info).toMatchObject({ key: 's/x', size: 2048 })
      expect((await stat(path('s/x'))).size).toBe(2048)
      expect(await tmpFiles()).toEqual([])
    })

    it('removes its temporary file when the body fails, the size is wrong or the signal fires', async () => {
      await store.put('s/x', bytes('old'))
      async function* failing() {
        yield new Uint8Array(1000)
        throw new Error('source gone')
      }
      await expect(store.putStream('s/x', failing())).rejects.toEqual(code('IO_ERROR'))
      await expect(store.putStream('s/y', chunks(new Uint8Array(10)), { sizeBytes: 11 })).rejects.toEqual(code('IO_ERROR'))
      const ac = new AbortController()
      async function* aborting() {
        yield new Uint8Array(1000)
        ac.abort()
        yield new Uint8Array(1000)
      }
      await expect(store.putStream('s/z', aborting(), { signal: ac.signal })).rejects.toEqual(code('ABORTED'))
      expect(await tmpFiles()).toEqual([])
      expect(await listKeys(store)).toEqual(['s/x'])
      expect(Buffer.from((await store.get('s/x'))!).toString()).toBe('old')
    })

    it('releases the body (destroys a Readable) when the write fails before reading it', async () => {
      await store.put('s/file', bytes('x'))
      const body = Readable.from([new Uint8Array(10)])
      await expect(store.putStream('s/file/below', body)).rejects.toEqual(code('IO_ERROR'))
      await new Promise((r) => setImmediate(r))
      expect(body.destroyed).toBe(true)
      expect(await tmpFiles()).toEqual([])
    })

    it.runIf(existsSync('/proc/self/fd'))('closes the file when a stream is left early or never read', async () => {
      await store.put('s/fd', new Uint8Array(6 * 1024 * 1024))
      const openFds = async () => (await readdir('/proc/self/fd')).length
      const before = await openFds()
      const unread = await store.getStream('s/fd')
      expect(await openFds()).toBe(before + 1)
      await unread![Symbol.asyncIterator]().return!()
      const left = await store.getStream('s/fd')
      for await (const _ of left!) break
      await new Promise((r) => setTimeout(r, 50))
      expect(await openFds()).toBe(before)
    })

    it('streams an object whole even when it is deleted after getStream resolved', async () => {
      const body = new Uint8Array(3 * 1024 * 1024).fill(7)
      await store.put('s/gone', body)
      const stream = await store.getStream('s/gone')
      await store.delete(['s/gone'])
      let size = 0
      for await (const chunk of stream!) size += chunk.byteLength
      expect(size).toBe(body.byteLength)
    })

    it('reads a file up to 4 MiB in one chunk, a larger one in chunks of 256 KiB', async () => {
      const chunkSizes = async (key: string) => {
        const sizes: number[] = []
        for await (const chunk of (await store.getStream(key))!) sizes.push(chunk.byteLength)
        return sizes
      }
      await store.put('s/small', new Uint8Array(4 * 1024 * 1024))
      expect(await chunkSizes('s/small')).toEqual([4 * 1024 * 1024])
      await store.put('s/big', new Uint8Array(5 * 1024 * 1024 + 5))
      const sizes = await chunkSizes('s/big')
      expect(sizes.length).toBe(21)
      expect(Math.max(...sizes)).toBe(256 * 1024)
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(5 * 1024 * 1024 + 5)
      await store.put('s/empty', new Uint8Array(0))
      expect(await chunkSizes('s/empty')).toEqual([])
    })

    it('rejects keys reserved for temporary files', async () => {
      await expect(store.getStream('.vecsnap-tmp-x')).rejects.toEqual(code('INVALID_ARGUMENT'))
      await expect(store.putStream('a/.vecsnap-tmp', chunks(bytes('x')))).rejects.toEqual(code('INVALID_ARGUMENT'))
    })
  })

  describe('copy', () => {
    beforeEach(async () => {
      await store.put('src', bytes('source'))
    })

    it('hard-links in link and auto mode', async () => {
      for (const mode of ['link', 'auto', undefined] as const) {
        const to = `linked/${mode ?? 'default'}`
        await store.copy('src', to, mode === undefined ? {} : { mode })
        const [a, b] = [await stat(path('src')), await stat(path(to))]
        expect(b.ino, String(mode)).toBe(a.ino)
      }
      expect((await stat(path('src'))).nlink).toBe(4)
    })

    it('copies bytes in copy mode', async () => {
      await store.copy('src', 'copied', { mode: 'copy' })
      const [a, b] = [await stat(path('src')), await stat(path('copied'))]
      expect(b.ino).not.toBe(a.ino)
      expect(a.nlink).toBe(1)
      expect(b.nlink).toBe(1)
    })

    it('keeps a linked copy when the source is overwritten', async () => {
      await store.copy('src', 'dst', { mode: 'link' })
      const linked = (await stat(path('dst'))).ino
      await store.put('src', bytes('new source'))
      expect(Buffer.from((await store.get('dst'))!).toString()).toBe('source')
      expect((await stat(path('dst'))).ino).toBe(linked)
      expect((await stat(path('dst'))).nlink).toBe(1)
    })

    it('reports a new link as modified now, though its file is old: the link changes its ctime', async () => {
      const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000)
      await utimes(path('src'), twoDaysAgo, twoDaysAgo)
      // utimes itself sets the ctime to now: let it age, so only the link can make the file recent.
      await ageCtime()
      const linkedAt = Date.now()
      // The kernel stamps files with a coarse clock, a tick behind Date.now() at most.
      const recent = (lastModified: number | undefined) => expect(lastModified).toBeGreaterThanOrEqual(linkedAt - 20)
      const results = [
        await store.copy('src', 'l/sized', { mode: 'link', sizeBytes: 6 }),
        await store.copy('src', 'l/stat', { mode: 'link' }),
        await store.copy('src', 'l/auto'),
      ]
      await store.put('l/replaced', bytes('other'))
      results.push(await store.copy('src', 'l/replaced', { mode: 'link' }))
      for (const r of results) recent(r.lastModified)
      for (const key of ['src', 'l/sized', 'l/stat', 'l/auto', 'l/replaced']) {
        expect((await stat(path(key))).ino).toBe((await stat(path('src'))).ino)
        recent((await store.head(key))?.lastModified)
      }
      for await (const o of store.list('')) recent(o.lastModified)
      // The mtime stays old.
      expect((await stat(path('l/sized'))).mtimeMs).toBeLessThan(linkedAt - 86_400_000)
    })

    it('reports the sizeBytes hint for a new link without reading the file, and the copied size otherwise', async () => {
      // 'src' holds 6 bytes; a hint of 4 shows which size was reported.
      const before = Date.now()
      const linked = await store.copy('src', 'hinted/link', { mode: 'link', sizeBytes: 4 })
      expect(linked).toEqual({ key: 'hinted/link', size: 4, lastModified: expect.any(Number) })
      expect(linked.lastModified).toBeGreaterThanOrEqual(before)
      expect((await stat(path('hinted/link'))).ino).toBe((await stat(path('src'))).ino)
      // A byte copy, and a link over an existing target, report what is there.
      expect(await store.copy('src', 'hinted/bytes', { mode: 'copy', sizeBytes: 4 })).toMatchObject({ size: 6 })
      expect(await store.copy('src', 'hinted/link', { mode: 'link', sizeBytes: 4 })).toMatchObject({ size: 6 })
      await expect(store.copy('src', 'hinted/bad', { sizeBytes: -1 })).rejects.toThrow(TypeError)
      expect(await store.head('hinted/bad')).toBeUndefined()
    })

    it('links a new target in place, and replaces an existing other object whole', async () => {
      await store.put('other', bytes('other'))
      await store.copy('src', 'deep/new/dst', { mode: 'link' })
      expect((await stat(path('deep/new/dst'))).ino).toBe((await stat(path('src'))).ino)
      await store.copy('src', 'other', { mode: 'link' })
      expect((await stat(path('other'))).ino).toBe((await stat(path('src'))).ino)
      expect(Buffer.from((await store.get('other'))!).toString()).toBe('source')
      expect(await tmpFiles()).toEqual([])
    })

    it('falls back to a byte copy when links turn out impossible only after the target exists', async () => {
      await store.put('dst', bytes('old'))
      linkFault.code = 'EXDEV'
      const info = await store.copy('src', 'dst', { mode: 'auto' })
      expect(info).toMatchObject({ key: 'dst', size: 6 })
      expect(Buffer.from((await store.get('dst'))!).toString()).toBe('source')
      expect(await tmpFiles()).toEqual([])
    })

    it('leaves no temporary file when linking over an existing link to the same file', async () => {
      await store.copy('src', 'dst', { mode: 'link' })
      await store.copy('src', 'dst', { mode: 'link' })
      expect((await stat(path('src'))).nlink).toBe(2)
      expect(await tmpFiles()).toEqual([])
    })

    it.each(['EXDEV', 'EPERM', 'ENOTSUP', 'EMLINK'])('falls back to a byte copy when link fails with %s', async (errno) => {
      linkFault.code = errno
      for (const mode of ['link', 'auto'] as const) {
        const info = await store.copy('src', `fallback/${mode}`, { mode })
        expect(info).toMatchObject({ key: `fallback/${mode}`, size: 6 })
        expect((await stat(path(`fallback/${mode}`))).ino).not.toBe((await stat(path('src'))).ino)
        expect(Buffer.from((await store.get(`fallback/${mode}`))!).toString()).toBe('source')
      }
      await expect(store.copy('missing', 'x', { mode: 'link' })).rejects.toEqual(code('NOT_FOUND'))
      expect(await tmpFiles()).toEqual([])
    })

    it('rejects IO_ERROR when link fails otherwise, leaving nothing behind', async () => {
      linkFault.code = 'EIO'
      await expect(store.copy('src', 'dst')).rejects.toEqual(code('IO_ERROR'))
      expect(await store.head('dst')).toBeUndefined()
      expect(await tmpFiles()).toEqual([])
    })

    it('rejects INVALID_ARGUMENT for an unknown mode', async () => {
      await expect(store.copy('src', 'dst', { mode: 'symlink' as 'link' })).rejects.toEqual(code('INVALID_ARGUMENT'))
    })
  })

  describe('keys and paths', () => {
    it('refuses keys that would escape the root, writing nothing outside it', async () => {
      await store.put('inside', bytes('x'))
      for (const key of ['../escape', 'a/../../escape', '/tmp/escape', '..', 'a/..', '..\\escape']) {
        await expect(store.put(key, bytes('x')), key).rejects.toEqual(code('INVALID_ARGUMENT'))
        await expect(store.copy('inside', key), key).rejects.toEqual(code('INVALID_ARGUMENT'))
        await expect(store.get(key), key).rejects.toEqual(code('INVALID_ARGUMENT'))
        await expect(store.delete([key]), key).rejects.toEqual(code('INVALID_ARGUMENT'))
      }
      expect((await readdir(dir)).sort()).toEqual(['objects'])
      expect(existsSync('/tmp/escape')).toBe(false)
    })

    it('rejects misuse of the options with a TypeError', () => {
      for (const options of [undefined, null, {}, { root: '' }, { root: 1 }]) {
        expect(() => new FsObjectStore(options as never), JSON.stringify(options)).toThrow(TypeError)
      }
    })

    it('lists nothing, and reads absence, before the root exists', async () => {
      expect(await listKeys(store)).toEqual([])
      expect(await store.get('a')).toBeUndefined()
      expect(existsSync(root)).toBe(false)
    })
  })

  describe('delete', () => {
    it('removes the parent directories it leaves empty, up to (not including) the root', async () => {
      await store.put('files/a/b/c/1', bytes('1'))
      await store.put('files/a/b/d/2', bytes('2'))
      await store.put('top', bytes('t'))
      await store.delete(['files/a/b/c/1'])
      expect(existsSync(path('files/a/b/c'))).toBe(false)
      expect(existsSync(path('files/a/b/d/2'))).toBe(true)
      await store.delete(['files/a/b/d/2', 'files/absent/x'])
      expect(await readdir(root)).toEqual(['top'])
      await store.delete(['top'])
      expect(await readdir(root)).toEqual([])
    })

    it('deletes many files across many directories', async () => {
      const keys = Array.from({ length: 300 }, (_, i) => `many/${i % 17}/${i}`)
      for (const k of keys) await store.put(k, bytes(k))
      await store.delete(keys.filter((_, i) => i % 2 === 0))
      expect((await listKeys(store, 'many/')).length).toBe(150)
      await store.delete(keys)
      expect(existsSync(path('many'))).toBe(false)
    })
  })

  describe('list', () => {
    it('orders "directories" among files by full key', async () => {
      for (const k of ['d/a/1', 'd/a-b', 'd/a.b', 'd/a0', 'd/b', 'd/a/2/x']) await store.put(k, bytes(k))
      expect(await listKeys(store, 'd/')).toEqual(['d/a-b', 'd/a.b', 'd/a/1', 'd/a/2/x', 'd/a0', 'd/b'])
      expect(await listKeys(store, 'd/a')).toEqual(['d/a-b', 'd/a.b', 'd/a/1', 'd/a/2/x', 'd/a0'])
    })

    it('rejects ABORTED when the signal fires while listing', async () => {
      for (let i = 0; i < 5; i++) await store.put(`l/${i}`, bytes('x'))
      const ac = new AbortController()
      const seen: string[] = []
      const run = async () => {
        for await (const o of store.list('l/', { signal: ac.signal })) {
          seen.push(o.key)
          if (seen.length === 2) ac.abort()
        }
      }
      await expect(run()).rejects.toEqual(code('ABORTED'))
      expect(seen.length).toBeLessThan(5)
    })
  })
})
