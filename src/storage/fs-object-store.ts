import { randomUUID } from 'node:crypto'
import { constants, type Dirent, type Stats } from 'node:fs'
import { copyFile, link, lstat, mkdir, open, readFile, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import { SnapshotError, throwIfAborted, toIoError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { assertBody, assertCopyMode, assertKeyList, compareKeys, validateObjectKey, validatePrefix } from './keys-validate.js'
import type { CopyOptions, ObjectInfo, ObjectStore, ObjectStoreCapabilities } from './object-store.js'

/** Options of {@link FsObjectStore}. */
export interface FsObjectStoreOptions {
  /** Directory that holds the objects; key `K` is the file `${root}/${K}`. Created on the first write. */
  root: string
  /**
   * `fsync` every file before it becomes visible, so a written object survives a power
   * loss (slower). Process crashes never leave partial objects either way.
   * @default false
   */
  fsync?: boolean
}

/** Directory under the root for files being written; never listed, never a key. */
const TMP_DIR = '.vecsnap-tmp'
/** Temporary files older than this are left over from a crash and removed on the first write. */
const STALE_TMP_MS = 3_600_000
/** Files stat'ed, or unlinked, concurrently. */
const BATCH = 64
/** Attempts of the final rename (a concurrent delete may remove an empty parent directory). */
const COMMIT_ATTEMPTS = 5
/** Errors where a path does not name a file. */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR'])
/** `link` errors after which a byte copy is tried instead. */
const NO_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS'])

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code
const info = (key: string, st: Stats): ObjectInfo => ({ key, size: st.size, lastModified: Math.floor(st.mtimeMs) })
const notFound = (key: string) => new SnapshotError('NOT_FOUND', `object not found: ${JSON.stringify(key)}`, { details: { key } })

interface WalkItem {
  name: string
  /** `name`, plus '/' for a directory: sorting these orders the keys below them too. */
  sortKey: string
  dir: boolean
}

/**
 * An ObjectStore over a local directory: key `K` is the file `${root}/${K}`.
 *
 * - `put` writes a temporary file under `${root}/.vecsnap-tmp/` and renames it into place,
 *   so readers see the old object or the whole new one.
 * - `copy` hard-links where it can (mode `auto` or `link`; objects are immutable and a
 *   later `put` replaces the file rather than writing into it) and falls back to a byte
 *   copy (a reflink where the filesystem supports it) across devices or on filesystems
 *   without links; mode `copy` always copies bytes.
 * - `delete` also removes parent directories it leaves empty.
 * - A key cannot be both an object and a "directory" of other objects (`a` and `a/b`):
 *   the second write fails with `IO_ERROR`.
 *
 * @example
 * const objects = new FsObjectStore({ root: './data/objects' })
 * await objects.put('files/a', new Uint8Array([1, 2, 3]))
 */
export class FsObjectStore implements ObjectStore {
  /** Hard links, no server-side copy. */
  readonly capabilities: ObjectStoreCapabilities = Object.freeze({ serverSideCopy: false, hardLink: true, multipartCopy: false })
  /** The absolute root directory. */
  readonly root: string
  readonly #rootSlash: string
  readonly #tmpDir: string
  readonly #fsync: boolean
  readonly #tmpTag = randomUUID()
  #tmpSeq = 0
  #tmpReady: Promise<void> | undefined

  constructor(options: FsObjectStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('Expected `options` to be an object with a `root`')
    if (typeof options.root !== 'string' || options.root === '') {
      throw new TypeError(`Expected \`root\` to be a non-empty string, got \`${String(options.root)}\``)
    }
    this.root = resolve(options.root)
    this.#rootSlash = this.root.endsWith(sep) ? this.root : this.root + sep
    this.#tmpDir = join(this.root, TMP_DIR)
    this.#fsync = options.fsync ?? false
  }

  /** {@inheritDoc ObjectStore.put} */
  async put(key: string, body: Uint8Array, options: AbortOptions = {}): Promise<ObjectInfo> {
    const target = this.#path(key)
    assertBody(body)
    const { signal } = options
    throwIfAborted(signal)
    let tmp: string | undefined
    try {
      tmp = await this.#tempFile()
      const st = await this.#writeTemp(tmp, body)
      throwIfAborted(signal)
      await this.#commit(tmp, target)
      tmp = undefined
      return info(key, st)
    } catch (err) {
      if (tmp !== undefined) await unlink(tmp).catch(() => undefined)
      throw toIoError(err, `put ${JSON.stringify(key)}`, signal)
    }
  }

  /** {@inheritDoc ObjectStore.get} */
  async get(key: string, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    const path = this.#path(key)
    throwIfAborted(options.signal)
    try {
      return await readFile(path, { signal: options.signal })
    } catch (err) {
      if (ABSENT.has(errno(err)!)) return undefined
      throw toIoError(err, `get ${JSON.stringify(key)}`, options.signal)
    }
  }

  /** {@inheritDoc ObjectStore.head} */
  async head(key: string, options: AbortOptions = {}): Promise<ObjectInfo | undefined> {
    const path = this.#path(key)
    throwIfAborted(options.signal)
    try {
      const st = await stat(path)
      return st.isFile() ? info(key, st) : undefined
    } catch (err) {
      if (ABSENT.has(errno(err)!)) return undefined
      throw toIoError(err, `head ${JSON.stringify(key)}`, options.signal)
    }
  }

  /** {@inheritDoc ObjectStore.list} */
  async *list(prefix: string, options: AbortOptions = {}): AsyncGenerator<ObjectInfo> {
    validatePrefix(prefix)
    const { signal } = options
    throwIfAborted(signal)
    const cut = prefix.lastIndexOf('/')
    const dirKey = prefix.slice(0, cut + 1)
    if (dirKey === `${TMP_DIR}/` || dirKey.startsWith(`${TMP_DIR}/`)) return
    try {
      yield* this.#walk(dirKey, prefix.slice(cut + 1), signal)
    } catch (err) {
      throw toIoError(err, `list ${JSON.stringify(prefix)}`, signal)
    }
  }

  /** {@inheritDoc ObjectStore.copy} */
  async copy(fromKey: string, toKey: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    const src = this.#path(fromKey)
    const dst = this.#path(toKey)
    assertCopyMode(options.mode)
    const { signal } = options
    throwIfAborted(signal)
    if (fromKey === toKey) {
      const same = await this.head(fromKey, options)
      if (same === undefined) throw notFound(fromKey)
      return same
    }
    let tmp: string | undefined
    try {
      tmp = await this.#tempFile()
      const linked = options.mode !== 'copy' && (await this.#link(src, tmp, fromKey))
      if (!linked) await this.#copyBytes(src, tmp, fromKey)
      const st = await stat(tmp)
      throwIfAborted(signal)
      await this.#commit(tmp, dst)
      // Renaming a link over another link to the same file does nothing: drop ours.
      if (linked) await unlink(tmp).catch(() => undefined)
      tmp = undefined
      return info(toKey, st)
    } catch (err) {
      if (tmp !== undefined) await unlink(tmp).catch(() => undefined)
      throw toIoError(err, `copy ${JSON.stringify(fromKey)} to ${JSON.stringify(toKey)}`, signal)
    }
  }

  /** {@inheritDoc ObjectStore.delete} */
  async delete(keys: readonly string[], options: AbortOptions = {}): Promise<void> {
    assertKeyList(keys)
    const paths = [...new Set(keys)].map((key) => this.#path(key))
    const { signal } = options
    throwIfAborted(signal)
    const emptied = new Set<string>()
    try {
      for (let i = 0; i < paths.length; i += BATCH) {
        throwIfAborted(signal)
        const batch = paths.slice(i, i + BATCH)
        const results = await Promise.allSettled(batch.map((p) => this.#unlink(p)))
        results.forEach((r, j) => {
          if (r.status === 'fulfilled' && r.value) emptied.add(dirname(batch[j]))
        })
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
        if (failed !== undefined) throw failed.reason
      }
    } catch (err) {
      throw toIoError(err, `delete of ${keys.length} objects`, signal)
    } finally {
      await this.#prune(emptied)
    }
  }

  /** The file of `key`; validates it and refuses anything outside the root. */
  #path(key: string): string {
    validateObjectKey(key)
    if (key === TMP_DIR || key.startsWith(`${TMP_DIR}/`)) {
      throw new SnapshotError('INVALID_ARGUMENT', `invalid object key ${JSON.stringify(key)}: '${TMP_DIR}' is reserved`, { details: { key } })
    }
    const path = join(this.root, key)
    if (!path.startsWith(this.#rootSlash)) {
      throw new SnapshotError('INVALID_ARGUMENT', `invalid object key ${JSON.stringify(key)}: it resolves outside the store`, { details: { key } })
    }
    return path
  }

  /** A fresh path in the temporary directory (which exists once this resolves). */
  async #tempFile(): Promise<string> {
    await this.#ensureTmp()
    return join(this.#tmpDir, `${this.#tmpTag}-${++this.#tmpSeq}`)
  }

  #ensureTmp(): Promise<void> {
    this.#tmpReady ??= (async () => {
      await mkdir(this.#tmpDir, { recursive: true })
      await this.#removeStaleTemp()
    })().catch((err: unknown) => {
      this.#tmpReady = undefined
      throw err
    })
    return this.#tmpReady
  }

  /** Best effort: removes temporary files a crashed writer left behind. */
  async #removeStaleTemp(): Promise<void> {
    const names = await readdir(this.#tmpDir).catch(() => [] as string[])
    const before = Date.now() - STALE_TMP_MS
    await Promise.all(
      names.map(async (name) => {
        const path = join(this.#tmpDir, name)
        const st = await lstat(path).catch(() => undefined)
        if (st?.isFile() && st.mtimeMs < before) await unlink(path).catch(() => undefined)
      }),
    )
  }

  /** Re-creates the temporary directory (someone removed it) and retries `fn` once. */
  async #retryInFreshTemp<T>(fn: () => Promise<T>): Promise<T> {
    this.#tmpReady = undefined
    await this.#ensureTmp()
    return fn()
  }

  async #writeTemp(tmp: string, body: Uint8Array): Promise<Stats> {
    const openTmp = () => open(tmp, 'wx')
    const fh = await openTmp().catch((err: unknown) => {
      if (errno(err) !== 'ENOENT') throw err
      return this.#retryInFreshTemp(openTmp)
    })
    try {
      await fh.writeFile(body)
      if (this.#fsync) await fh.sync()
      return await fh.stat()
    } finally {
      await fh.close()
    }
  }

  /** Renames `tmp` to `target`, creating parent directories as needed. */
  async #commit(tmp: string, target: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await rename(tmp, target)
        return
      } catch (err) {
        if (errno(err) !== 'ENOENT' || attempt >= COMMIT_ATTEMPTS) throw err
        await mkdir(dirname(target), { recursive: true })
      }
    }
  }

  /** Throws `NOT_FOUND` unless `src` is a file. */
  async #assertSource(src: string, key: string): Promise<void> {
    const st = await stat(src).catch((err: unknown) => {
      if (ABSENT.has(errno(err)!)) return undefined
      throw err
    })
    if (st === undefined || !st.isFile()) throw notFound(key)
  }

  /** Hard-links `src` at `tmp`; false when links are not possible here. */
  async #link(src: string, tmp: string, key: string): Promise<boolean> {
    try {
      await link(src, tmp)
      return true
    } catch (err) {
      const code = errno(err)!
      if (NO_LINK.has(code)) {
        // EPERM is also what Linux says for a directory.
        await this.#assertSource(src, key)
        return false
      }
      if (!ABSENT.has(code)) throw err
      await this.#assertSource(src, key)
      await this.#retryInFreshTemp(() => link(src, tmp))
      return true
    }
  }

  /** Copies the bytes of `src` to `tmp` (a reflink where the filesystem can). */
  async #copyBytes(src: string, tmp: string, key: string): Promise<void> {
    const copy = () => copyFile(src, tmp, constants.COPYFILE_FICLONE)
    try {
      await copy()
    } catch (err) {
      if (!ABSENT.has(errno(err)!)) throw err
      await this.#assertSource(src, key)
      await this.#retryInFreshTemp(copy)
    }
  }

  /** Unlinks one object's file; false when there was none. */
  async #unlink(path: string): Promise<boolean> {
    try {
      await unlink(path)
      return true
    } catch (err) {
      const code = errno(err)
      if (ABSENT.has(code!)) return false
      if (code === 'EPERM' && (await lstat(path).catch(() => undefined))?.isDirectory()) return false
      throw err
    }
  }

  /** Best effort: removes the given directories and their ancestors while they are empty. */
  async #prune(dirs: Set<string>): Promise<void> {
    const deepestFirst = [...dirs].sort((a, b) => b.length - a.length)
    for (let dir of deepestFirst) {
      while (dir.startsWith(this.#rootSlash) && dir !== this.#tmpDir) {
        try {
          await rmdir(dir)
        } catch {
          break
        }
        dir = dirname(dir)
      }
    }
  }

  /** Yields the objects under `dirKey` ('' or ending in '/') whose next segment starts with `namePrefix`, in key order. */
  async *#walk(dirKey: string, namePrefix: string, signal: AbortSignal | undefined): AsyncGenerator<ObjectInfo> {
    const dir = dirKey === '' ? this.root : join(this.root, dirKey)
    let entries: Dirent[]
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch (err) {
      if (ABSENT.has(errno(err)!)) return
      throw err
    }
    const items: WalkItem[] = []
    for (const entry of entries) {
      const name = entry.name
      if (!name.startsWith(namePrefix) || name.includes('\\') || (dirKey === '' && name === TMP_DIR)) continue
      if (entry.isDirectory()) items.push({ name, sortKey: `${name}/`, dir: true })
      else if (entry.isFile()) items.push({ name, sortKey: name, dir: false })
    }
    items.sort((a, b) => compareKeys(a.sortKey, b.sortKey))
    let i = 0
    while (i < items.length) {
      throwIfAborted(signal)
      if (items[i].dir) {
        yield* this.#walk(`${dirKey}${items[i].name}/`, '', signal)
        i++
        continue
      }
      let end = i
      while (end < items.length && !items[end].dir && end - i < BATCH) end++
      const run = items.slice(i, end)
      const stats = await Promise.all(
        run.map((item) =>
          lstat(join(dir, item.name)).catch((err: unknown) => {
            if (ABSENT.has(errno(err)!)) return undefined
            throw err
          }),
        ),
      )
      for (let k = 0; k < run.length; k++) {
        const st = stats[k]
        if (!st?.isFile()) continue
        throwIfAborted(signal)
        yield info(`${dirKey}${run[k].name}`, st)
      }
      i = end
    }
  }
}
