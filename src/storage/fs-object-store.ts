import { randomUUID } from 'node:crypto'
import { constants, type Dirent, type Stats } from 'node:fs'
import { copyFile, link, lstat, mkdir, mkdirp, readdir, readFile, rename, rmdir, stat, unlink, writeNew } from './fs-calls.js'
import { dirname, join, resolve, sep } from 'node:path'
import { SnapshotError, throwIfAborted, toIoError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { assertBody, assertCopyMode, assertCopySizeHint, assertKeyList, compareKeys, validateObjectKey, validatePrefix } from './keys-validate.js'
import type { CopyOptions, ObjectInfo, ObjectStore, ObjectStoreCapabilities, PutOptions } from './object-store.js'

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

/**
 * Name prefix of files being written. They live next to their target (so the final rename
 * stays within one directory), are never listed, and no key segment may start with it.
 */
const TMP_PREFIX = '.vecsnap-tmp'
/** Temporary files older than this are left over from a crash; `list` removes them. */
const STALE_TMP_MS = 3_600_000
/** Files stat'ed, or unlinked, concurrently. */
const BATCH = 64
/** Attempts of a write into a directory (a concurrent delete may remove it while it is empty). */
const DIR_ATTEMPTS = 5
/** Directories remembered as existing; the set starts over when it grows past this. */
const KNOWN_DIRS = 10_000
/** Thrown inside `#linkTo` when links turn out impossible. */
const NO_LINKS = Symbol('no links')
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
 * - `put` writes a temporary file (`.vecsnap-tmp…`, next to the target) and renames it
 *   into place, so readers see the old object or the whole new one. `list` never shows
 *   temporary files and removes those a crashed writer left more than an hour ago.
 * - `copy` hard-links where it can (mode `auto` or `link`; objects are immutable and a
 *   later `put` replaces the file rather than writing into it): a link appears whole, so a
 *   new target is linked in place with no temporary file (and not `stat`ed when the caller
 *   passes `sizeBytes`: it reports the hint). It falls back to a byte copy (a
 *   reflink where the filesystem supports it, through a temporary file) across devices or
 *   on filesystems without links; mode `copy` always copies bytes.
 * - No key segment may start with `.vecsnap-tmp` (reserved for temporary files).
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
  readonly #fsync: boolean
  readonly #tmpTag = randomUUID()
  #tmpSeq = 0
  /**
   * Directories this store created or saw exist. Only a hint: a concurrent delete may
   * remove one once it is empty, and every write retries in a fresh directory on ENOENT.
   */
  readonly #knownDirs = new Set<string>()
  /** `mkdir` calls under way, by directory. */
  readonly #makingDirs = new Map<string, Promise<void>>()

  constructor(options: FsObjectStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('Expected `options` to be an object with a `root`')
    if (typeof options.root !== 'string' || options.root === '') {
      throw new TypeError(`Expected \`root\` to be a non-empty string, got \`${String(options.root)}\``)
    }
    this.root = resolve(options.root)
    this.#rootSlash = this.root.endsWith(sep) ? this.root : this.root + sep
    this.#fsync = options.fsync ?? false
  }

  /** {@inheritDoc ObjectStore.put} */
  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<ObjectInfo> {
    const target = this.#path(key)
    assertBody(body)
    const { signal } = options
    throwIfAborted(signal)
    try {
      if (options.fresh === true) {
        const written = await this.#inDir(dirname(target), () => this.#writeNew(target, body))
        if (written !== undefined) return { key, size: body.byteLength, lastModified: written }
        // The key exists after all: replace it atomically.
      }
      const st = await this.#viaTemp(target, (tmp) => this.#writeFile(tmp, body), signal)
      return info(key, st)
    } catch (err) {
      throw toIoError(err, `put ${JSON.stringify(key)}`, signal)
    }
  }

  /** {@inheritDoc ObjectStore.get} */
  async get(key: string, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    const path = this.#path(key)
    throwIfAborted(options.signal)
    try {
      return await readFile(path, options.signal)
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
    if (prefix.startsWith(TMP_PREFIX) || prefix.includes(`/${TMP_PREFIX}`)) return
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
    assertCopySizeHint(options.sizeBytes)
    const { signal } = options
    throwIfAborted(signal)
    if (fromKey === toKey) {
      const same = await this.head(fromKey, options)
      if (same === undefined) throw notFound(fromKey)
      return same
    }
    try {
      if (options.mode !== 'copy') {
        const linked = await this.#linkTo(src, dst, fromKey, signal, options.sizeBytes !== undefined)
        if (linked === 'linked') return { key: toKey, size: options.sizeBytes as number, lastModified: Date.now() }
        if (linked !== undefined) return info(toKey, linked)
      }
      const st = await this.#viaTemp(dst, (tmp) => this.#copyBytes(src, tmp, fromKey), signal)
      return info(toKey, st)
    } catch (err) {
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
    if (key.startsWith(TMP_PREFIX) || key.includes(`/${TMP_PREFIX}`)) {
      throw new SnapshotError('INVALID_ARGUMENT', `invalid object key ${JSON.stringify(key)}: segments starting with '${TMP_PREFIX}' are reserved`, { details: { key } })
    }
    // A valid key is relative with no empty, '.' or '..' segment and no backslash: appended
    // to the resolved root it is already normal (what `join` would make of it, at a fraction
    // of the cost of normalizing, which every call of a restore paid twice).
    return this.#rootSlash + key
  }

  /** Creates `dir` (and its parents) unless this store knows it exists; one `mkdir` per directory at a time. */
  #ensureDir(dir: string): Promise<void> | undefined {
    if (this.#knownDirs.has(dir)) return undefined
    let making = this.#makingDirs.get(dir)
    if (making === undefined) {
      making = this.#makeDir(dir).then(
        () => {
          this.#makingDirs.delete(dir)
          if (this.#knownDirs.size >= KNOWN_DIRS) this.#knownDirs.clear()
          this.#knownDirs.add(dir)
        },
        (err: unknown) => {
          this.#makingDirs.delete(dir)
          throw err
        },
      )
      this.#makingDirs.set(dir, making)
    }
    return making
  }

  /**
   * Creates `dir` below the root: its parent first (through `#ensureDir`, so the sibling
   * directories of a new segment share one `mkdir` of it), then `dir` alone. A recursive
   * `mkdir` would instead fail on the missing parent first, then create it, then retry, for
   * every new directory.
   */
  async #makeDir(dir: string): Promise<void> {
    const parent = dirname(dir)
    if (parent === dir || !parent.startsWith(this.#rootSlash)) return mkdirp(dir)
    await this.#ensureDir(parent)
    try {
      await mkdir(dir)
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err
      // Made by someone else; a file there is an error.
      if (!(await stat(dir)).isDirectory()) throw err
    }
  }

  /**
   * Runs `write` (which creates a file in `dir`) in an existing `dir`: creates it first,
   * and again (forgetting it and its parents) when creating it or `write` fails with
   * ENOENT because a concurrent delete removed it.
   * `write` must tell a missing source apart itself (by throwing `NOT_FOUND`).
   */
  async #inDir<T>(dir: string, write: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const making = this.#ensureDir(dir)
        if (making !== undefined) await making
        return await write()
      } catch (err) {
        // A delete pruned `dir` or a parent the store believed in (before or during the mkdir).
        if (errno(err) !== 'ENOENT' || attempt >= DIR_ATTEMPTS) throw err
        for (let d = dir; d.startsWith(this.#rootSlash); d = dirname(d)) this.#knownDirs.delete(d)
      }
    }
  }

  /**
   * Creates `target` atomically: `make` writes a temporary file next to it, which is then
   * renamed over it (while the temporary file is in it, no delete can remove the
   * directory). Resolves the stats of the new file; removes the temporary file on failure.
   */
  async #viaTemp(target: string, make: (tmp: string) => Promise<Stats>, signal: AbortSignal | undefined): Promise<Stats> {
    const dir = dirname(target)
    const tmp = join(dir, `${TMP_PREFIX}-${this.#tmpTag}-${++this.#tmpSeq}`)
    let renamed = false
    try {
      const st = await this.#inDir(dir, () => make(tmp))
      throwIfAborted(signal)
      await rename(tmp, target)
      renamed = st.nlink === 1
      return st
    } finally {
      // Also after renaming a link over another link to the same file, which does nothing.
      if (!renamed) await unlink(tmp).catch(() => undefined)
    }
  }

  /** Writes `body` to the new file `tmp`; resolves its stats. */
  #writeFile(tmp: string, body: Uint8Array): Promise<Stats> {
    return writeNew(tmp, body, { fsync: this.#fsync, stats: true })
  }

  /**
   * Writes `body` to `path` in place, creating the file (a `fresh` put). Resolves the
   * write's time (the clock when the file was closed: its mtime to the millisecond or so,
   * without a `stat`), or `undefined` when `path` exists. Removes the file on failure.
   */
  async #writeNew(path: string, body: Uint8Array): Promise<number | undefined> {
    try {
      await writeNew(path, body, { fsync: this.#fsync, removeOnError: true })
      return Date.now()
    } catch (err) {
      if (errno(err) === 'EEXIST') return undefined
      throw err
    }
  }

  /** Throws `NOT_FOUND` unless `src` is a file; resolves its stats. */
  async #assertSource(src: string, key: string): Promise<Stats> {
    const st = await stat(src).catch((err: unknown) => {
      if (ABSENT.has(errno(err)!)) return undefined
      throw err
    })
    if (st === undefined || !st.isFile()) throw notFound(key)
    return st
  }

  /**
   * Hard-links `src` at `dst`. Resolves the stats of the new link (`'linked'` instead, with
   * `sized`, for a new `dst`: the caller knows the size, so no `stat`), or `undefined` when
   * links are not possible here (the caller copies bytes). A new `dst` is linked in place;
   * an existing one is replaced through a temporary link, unless it already is this file.
   */
  async #linkTo(src: string, dst: string, key: string, signal: AbortSignal | undefined, sized = false): Promise<Stats | 'linked' | undefined> {
    const linkAt = async (path: string, statNew: boolean): Promise<Stats | 'linked' | 'exists' | undefined> => {
      try {
        await link(src, path)
      } catch (err) {
        const code = errno(err)!
        if (code === 'EEXIST') return 'exists'
        // EPERM is also what Linux says for a directory; ENOENT may be the source or the directory.
        if (NO_LINK.has(code) || ABSENT.has(code)) await this.#assertSource(src, key)
        if (NO_LINK.has(code)) return undefined
        throw err
      }
      return statNew ? stat(path) : 'linked'
    }
    const direct = await this.#inDir(dirname(dst), () => linkAt(dst, !sized))
    if (direct !== 'exists') return direct
    const [have, want] = await Promise.all([stat(dst).catch(() => undefined), this.#assertSource(src, key)])
    if (have !== undefined && have.ino === want.ino && have.dev === want.dev) return have
    // Linux may report EEXIST before EXDEV: links can still turn out impossible here.
    return this.#viaTemp(
      dst,
      async (tmp) => {
        const made = await linkAt(tmp, true)
        if (made === undefined) throw NO_LINKS
        return made as Stats // a fresh temporary name never exists
      },
      signal,
    ).catch((err: unknown) => {
      if (err === NO_LINKS) return undefined
      throw err
    })
  }

  /** Copies the bytes of `src` to the new file `tmp` (a reflink where the filesystem can); resolves its stats. */
  async #copyBytes(src: string, tmp: string, key: string): Promise<Stats> {
    try {
      await copyFile(src, tmp, constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL)
    } catch (err) {
      if (ABSENT.has(errno(err)!)) await this.#assertSource(src, key)
      throw err
    }
    return stat(tmp)
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
      while (dir.startsWith(this.#rootSlash)) {
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
      entries = await readdir(dir)
    } catch (err) {
      if (ABSENT.has(errno(err)!)) return
      throw err
    }
    const items: WalkItem[] = []
    const temps: string[] = []
    for (const entry of entries) {
      const name = entry.name
      if (name.startsWith(TMP_PREFIX)) {
        if (entry.isFile()) temps.push(join(dir, name))
        continue
      }
      if (!name.startsWith(namePrefix) || name.includes('\\')) continue
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
    if (temps.length > 0) await this.#removeStale(temps)
  }

  /** Best effort: removes the temporary files among `paths` that a crashed writer left behind. */
  async #removeStale(paths: readonly string[]): Promise<void> {
    const before = Date.now() - STALE_TMP_MS
    await Promise.all(
      paths.map(async (path) => {
        const st = await lstat(path).catch(() => undefined)
        if (st?.isFile() && st.mtimeMs < before) await unlink(path).catch(() => undefined)
      }),
    )
  }
}
