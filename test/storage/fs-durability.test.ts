import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'

/**
 * Every call of `node:fs` that makes a write durable or visible, in order, as
 * `fsync <path>`, `rename <from> <to>`, `link <from> <to>`, `mkdir <path>` or
 * `copy <from> <to>` (paths absolute; see `log`). A power loss cannot be simulated: what
 * these tests check is that the syncs happen, on the right files and directories, in the
 * right order, and that `fsync: false` skips them.
 */
const calls = vi.hoisted(() => ({ log: [] as string[], fds: new Map<number, string>() }))

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>()
  type Cb = (...args: unknown[]) => void
  const mocked = {
    ...actual,
    open: (path: string, ...rest: unknown[]) => {
      const cb = rest.pop() as Cb
      ;(actual.open as unknown as (...a: unknown[]) => void)(path, ...rest, (err: unknown, fd: number) => {
        if (err === null) calls.fds.set(fd, String(path))
        cb(err, fd)
      })
    },
    fsync: (fd: number, cb: Cb) => {
      calls.log.push(`fsync ${calls.fds.get(fd)}`)
      actual.fsync(fd, cb)
    },
    rename: (from: string, to: string, cb: Cb) => {
      calls.log.push(`rename ${from} ${to}`)
      actual.rename(from, to, cb)
    },
    link: (from: string, to: string, cb: Cb) => {
      calls.log.push(`link ${from} ${to}`)
      actual.link(from, to, cb)
    },
    mkdir: (path: string, ...rest: unknown[]) => {
      calls.log.push(`mkdir ${path}`)
      ;(actual.mkdir as unknown as (...a: unknown[]) => void)(path, ...rest)
    },
    copyFile: (from: string, to: string, mode: number, cb: Cb) => {
      calls.log.push(`copy ${from} ${to}`)
      actual.copyFile(from, to, mode, cb)
    },
  }
  return { ...mocked, default: mocked }
})

const bytes = (s: string) => new TextEncoder().encode(s)

describe('FsObjectStore durability', () => {
  let dir: string
  let root: string

  /** The calls logged since the last one, with paths relative to `dir` and temporary names as `<tmp>`. */
  function log(): string[] {
    const out = calls.log.map((line) =>
      line
        .split(' ')
        .map((word, i) => (i === 0 ? word : relative(dir, word) || '.'))
        .map((word) => word.replace(/\.vecsnap-tmp-[^/ ]+/g, '<tmp>'))
        .join(' '),
    )
    calls.log.length = 0
    return out
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vecsnap-durable-'))
    root = join(dir, 'objects')
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** A store (durable unless told otherwise) with `objects/d/src` written, and the log emptied. */
  async function storeWithSource(options: { fsync?: boolean } = {}): Promise<FsObjectStore> {
    const store = new FsObjectStore({ root, ...options })
    await store.put('d/src', bytes('source'))
    log()
    return store
  }

  describe('by default', () => {
    it('put: syncs the temporary file before the rename, and the directory after it', async () => {
      const store = await storeWithSource()
      await store.put('d/a', bytes('a'))
      expect(log()).toEqual(['fsync objects/d/<tmp>', 'rename objects/d/<tmp> objects/d/a', 'fsync objects/d'])
      // Replacing an object is the same.
      await store.put('d/a', bytes('b'))
      expect(log()).toEqual(['fsync objects/d/<tmp>', 'rename objects/d/<tmp> objects/d/a', 'fsync objects/d'])
    })

    it('putStream: syncs the temporary file before the rename, and the directory after it', async () => {
      const store = await storeWithSource()
      async function* body() {
        yield bytes('stream')
        yield bytes('ed')
      }
      await store.putStream('d/s', body())
      expect(log()).toEqual(['fsync objects/d/<tmp>', 'rename objects/d/<tmp> objects/d/s', 'fsync objects/d'])
      await store.putStream('d/s', body(), { fresh: true })
      expect(log()).toEqual(['fsync objects/d/<tmp>', 'rename objects/d/<tmp> objects/d/s', 'fsync objects/d'])
    })

    it('a fresh put: syncs the file written in place, then its directory', async () => {
      const store = await storeWithSource()
      await store.put('d/fresh', bytes('f'), { fresh: true })
      expect(log()).toEqual(['fsync objects/d/fresh', 'fsync objects/d'])
    })

    it('syncs the parent of every directory it creates, up to the root\'s parent', async () => {
      const store = new FsObjectStore({ root })
      await store.put('x/y/z', bytes('z'))
      expect(log()).toEqual([
        // One recursive mkdir makes the root and its first directory.
        'mkdir objects/x',
        'fsync objects',
        'fsync .',
        'mkdir objects/x/y',
        'fsync objects/x',
        'fsync objects/x/y/<tmp>',
        'rename objects/x/y/<tmp> objects/x/y/z',
        'fsync objects/x/y',
      ])
    })

    it('copy by hard link: syncs the directory of the new link (with and without a size hint, and over an existing target)', async () => {
      const store = await storeWithSource()
      await store.copy('d/src', 'd/l1', { mode: 'link', sizeBytes: 6 })
      expect(log()).toEqual(['link objects/d/src objects/d/l1', 'fsync objects/d'])
      await store.copy('d/src', 'd/l2')
      expect(log()).toEqual(['link objects/d/src objects/d/l2', 'fsync objects/d'])
      await store.put('d/other', bytes('other'))
      log()
      await store.copy('d/src', 'd/other', { mode: 'link' })
      expect(log()).toEqual(['link objects/d/src objects/d/other', 'link objects/d/src objects/d/<tmp>', 'rename objects/d/<tmp> objects/d/other', 'fsync objects/d'])
    })

    it('copy of bytes: syncs the copy before the rename, and the directory after it', async () => {
      const store = await storeWithSource()
      await store.copy('d/src', 'd/c', { mode: 'copy' })
      expect(log()).toEqual(['copy objects/d/src objects/d/<tmp>', 'fsync objects/d/<tmp>', 'rename objects/d/<tmp> objects/d/c', 'fsync objects/d'])
    })

    it('groups concurrent syncs of one directory, and resolves each write only after a sync that began after it', async () => {
      const store = await storeWithSource()
      const keys = Array.from({ length: 50 }, (_, i) => `d/many-${i}`)
      await Promise.all(keys.map((k) => store.copy('d/src', k, { sizeBytes: 6 })))
      const lines = log()
      const syncs = lines.filter((l) => l === 'fsync objects/d').length
      expect(lines.filter((l) => l.startsWith('link ')).length).toBe(50)
      expect(syncs).toBeGreaterThanOrEqual(1)
      expect(syncs).toBeLessThan(50)
      // The last link is followed by a sync.
      const lastLink = lines.map((l) => l.startsWith('link ')).lastIndexOf(true)
      expect(lines.slice(lastLink + 1)).toContain('fsync objects/d')
    })
  })

  describe('with fsync: false', () => {
    it('syncs nothing: put, fresh put, new directories, links and byte copies', async () => {
      const store = await storeWithSource({ fsync: false })
      await store.put('d/a', bytes('a'))
      await store.put('n/e/w', bytes('w'))
      await store.put('d/fresh', bytes('f'), { fresh: true })
      await store.copy('d/src', 'd/l1', { sizeBytes: 6 })
      await store.copy('d/src', 'd/l2')
      await store.copy('d/src', 'd/a', { mode: 'link' })
      await store.copy('d/src', 'd/c', { mode: 'copy' })
      await store.putStream('d/s', (async function* () {
        yield bytes('s')
      })())
      const lines = log()
      expect(lines.filter((l) => l.startsWith('rename ')).length).toBe(5)
      expect(lines.filter((l) => l.startsWith('fsync '))).toEqual([])
    })
  })

  it('rejects an fsync option that is not a boolean', () => {
    expect(() => new FsObjectStore({ root, fsync: 'yes' as never })).toThrow(TypeError)
  })
})
