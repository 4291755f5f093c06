import { randomUUID } from 'node:crypto'
import { constants, createReadStream, type Stats } from 'node:fs'
import { close, copyFile, fstat, fsync, fsyncFile, link, lstat, open, readFile, rename, stat, unlink, writeChunk, writeNew } from './fs-calls.js'
import { Directories } from './fs-directories.js'
import { ABSENT, BATCH, errno, info, removeEmptyDirs, removeStaleTemps, TMP_PREFIX, walkObjects } from './fs-tree.js'
import { dirname, join, resolve, sep } from 'node:path'
import { SnapshotError, throwIfAborted, toIoError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { assertBody, assertCopyMode, assertCopySizeHint, assertKeyList, validateObjectKey, validatePrefix } from './keys-validate.js'
import type { CopyOptions, ObjectInfo, ObjectStore, ObjectStoreCapabilities, PutOptions, PutStreamOptions } from './object-store.js'
import { assertStreamBody, assertStreamSize, checkedBody, mappedChunks, releaseBody, streamFailure } from './stream-body.js'

/** Options of {@link FsObjectStore}. */
export interface FsObjectStoreOptions {
  /** Directory that holds the objects; key `K` is the file `${root}/${K}`. Created on the first write. */
  root: string
  /**
   * Make every write durable before it resolves: `fsync` each new file before it is
   * renamed into place (a byte copy's too), then `fsync` its directory after the rename,
   * link or in-place write (and a new directory's parent after the `mkdir`), so an object
   * whose `put` or `copy` resolved survives a power loss. `false` skips every `fsync`:
   * faster (see the durability bench), for tests, benchmarks and scratch data; after a
   * power loss (not a process crash) objects written shortly before may then be missing,
   * empty or partial. Deletes are never synced (a deleted object that comes back is an
   * orphan, which GC collects).
   * @default true
   */
  fsync?: boolean
}

/** Options of {@link FsObjectStore.removeStaleTempFiles}. */
export interface RemoveStaleTempFilesOptions extends AbortOptions {
  /** Only temporary files unchanged for at least this long. @default 3_600_000 (an hour) */
  olderThanMs?: number
}

/** Temporary files unchanged for this long are left over from a crash (`removeStaleTempFiles`). */
const STALE_TMP_MS = 3_600_000
/**
 * Chunk size of `getStream` for files above {@link WHOLE_CHUNK_MAX_BYTES} (the read
 * stream's `highWaterMark`). Copying a large file to S3 ran about twice as fast with
 * 256 KiB chunks as with 1 MiB ones (export-rss bench).
 */
const STREAM_CHUNK_BYTES = 256 * 1024
/**
 * Files up to this size are streamed in one chunk: one allocation and one read, as
 * `readFile` would, and a store that needs the body in one piece (an S3 PutObject) takes
 * it without joining chunks (which cost exports of many small files about 1 ms per file).
 */
const WHOLE_CHUNK_MAX_BYTES = 4 * 1024 * 1024
/** Thrown inside `#linkTo` when links turn out impossible. */
const NO_LINKS = Symbol('no links')
/** `link` errors after which a byte copy is tried instead. */
const NO_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS'])

const notFound = (key: string) => new SnapshotError('NOT_FOUND', `object not found: ${JSON.stringify(key)}`, { details: { key } })

/**
 * An ObjectStore over a local directory: key `K` is the file `${root}/${K}`.
 *
 * - `put` writes a temporary file (`.vecsnap-tmp…`, next to the target) and renames it
 *   into place, so readers see the old object or the whole new one (a `fresh` put of a new
 *   key writes in place). `list` never shows temporary files; `removeStaleTempFiles`
 *   removes those a crashed writer left.
 * - Durable by default: `put` and `copy` resolve once the file and its directory entry are
 *   `fsync`ed (option `fsync`).
 * - `lastModified` is the later of a file's mtime and ctime, so a new hard link is recent.
 * - `copy` hard-links where it can (mode `auto` or `link`; objects are immutable and a
 *   later `put` replaces the file rather than writing into it): a link appears whole, so a
 *   new target is linked in place with no temporary file (and not `stat`ed when the caller
 *   passes `sizeBytes`: it reports the hint). It falls back to a byte copy (a
 *   reflink where the filesystem supports it, through a temporary file) across devices or
 *   on filesystems without links; mode `copy` always copies bytes.
 * - No key segment may start with `.vecsnap-tmp` (reserved for temporary files).
 * - `delete` also removes parent directories it leaves empty.
 * - `getStream` reads a file up to 4 MiB in one chunk, a larger one in 256 KiB chunks; `putStream` writes the body chunk by chunk
 *   to a temporary file next to the target (`fsync`ed when durable), then renames it into
 *   place, like `put` (a `fresh` write is atomic too). Neither holds the object in memory.
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
  readonly #dirs: Directories

  /** Validates the options; nothing touches the disk before the first call. Throws a `TypeError` on bad options. */
  constructor(options: FsObjectStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('Expected `options` to be an object with a `root`')
    if (typeof options.root !== 'string' || options.root === '') {
      throw new TypeError(`Expected \`root\` to be a non-empty string, got \`${String(options.root)}\``)
    }
    this.root = resolve(options.root)
    this.#rootSlash = this.root.endsWith(sep) ? this.root : this.root + sep
    if (options.fsync !== undefined && typeof options.fsync !== 'boolean') {
      throw new TypeError(`Expected \`fsync\` to be a boolean, got \`${String(options.fsync)}\``)
    }
    this.#fsync = options.fsync ?? true
    this.#dirs = new Directories(this.#rootSlash, this.#fsync)
  }

  /**
   * Removes the temporary files (`.vecsnap-tmp…`) under the root that have not changed for
   * `olderThanMs` (an hour by default): what writers that crashed left behind. Nothing
   * else does (`list` never writes); call it once at startup, before or after the
   * manager's `open()`, or now and then. Best effort: files it cannot remove are skipped.
   * Resolves how many it removed.
   */
  async removeStaleTempFiles(options: RemoveStaleTempFilesOptions = {}): Promise<number> {
    const { signal, olderThanMs = STALE_TMP_MS } = options
    if (typeof olderThanMs !== 'number' || !(olderThanMs >= 0)) {
      throw new TypeError(`Expected \`olderThanMs\` to be a number ≥ 0, got \`${String(olderThanMs)}\``)
    }
    throwIfAborted(signal)
    try {
      return await removeStaleTemps(this.root, Date.now() - olderThanMs, signal)
    } catch (err) {
      throw toIoError(err, 'removing stale temporary files', signal)
    }
  }

  /** {@inheritDoc ObjectStore.put} */
  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<ObjectInfo> {
    const target = this.#path(key)
    assertBody(body)
    const { signal } = options
    throwIfAborted(signal)
    try {
      if (options.fresh === true) {
        const dir = dirname(target)
        const written = await this.#dirs.inDir(dir, () => this.#writeNew(target, body))
        if (written !== undefined) {
          await this.#dirs.sync(dir)
          return { key, size: body.byteLength, lastModified: written }
        }
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

  /**
   * The object's bytes as a stream (a `fs.ReadStream`'s chunks: the whole file in one for
   * files up to 4 MiB, else 256 KiB chunks), or `undefined`
   * when it is absent. The file is opened before this resolves, so a later delete does not
   * cut the stream short; read it to the end or stop early (`break`) to close it.
   */
  async getStream(key: string, options: AbortOptions = {}): Promise<AsyncIterable<Uint8Array> | undefined> {
    const path = this.#path(key)
    const { signal } = options
    throwIfAborted(signal)
    const what = `get ${JSON.stringify(key)}`
    let fd: number | undefined
    let size = 0
    try {
      fd = await open(path, 'r')
      const st = await fstat(fd)
      // A "directory" key opens on some platforms: it is no object.
      if (!st.isFile()) {
        await close(fd)
        return undefined
      }
      size = st.size
      throwIfAborted(signal)
    } catch (err) {
      if (fd !== undefined) await close(fd).catch(() => undefined)
      if (ABSENT.has(errno(err)!)) return undefined
      throw toIoError(err, what, signal)
    }
    const highWaterMark = size <= WHOLE_CHUNK_MAX_BYTES ? Math.max(size, 1) : STREAM_CHUNK_BYTES
    const stream = createReadStream(path, { fd, highWaterMark, signal })
    return mappedChunks(stream, what, signal)
  }

  /**
   * Writes the streamed `body` at `key`: chunk by chunk into a temporary file next to the
   * target, `fsync`ed when durable, renamed into place (readers see the old object or the
   * whole new one), and the directory synced. On failure or abort the temporary file is
   * removed and the key keeps what it held. Resolves what was written.
   */
  async putStream(key: string, body: AsyncIterable<Uint8Array>, options: PutStreamOptions = {}): Promise<ObjectInfo> {
    const target = this.#path(key)
    assertStreamBody(body)
    assertStreamSize(options.sizeBytes)
    const { signal } = options
    throwIfAborted(signal)
    const dir = dirname(target)
    const tmp = join(dir, `${TMP_PREFIX}-${this.#tmpTag}-${++this.#tmpSeq}`)
    const checked = checkedBody(body, { key, sizeBytes: options.sizeBytes, signal })
    let fd: number | undefined
    let created = false
    let renamed = false
    try {
      // Only the open retries when a concurrent delete removed the directory: the body can be read once.
      fd = await this.#dirs.inDir(dir, () => open(tmp, 'wx'))
      created = true
      for await (const chunk of checked) await writeChunk(fd, chunk)
      if (this.#fsync) await fsync(fd)
      const st = await fstat(fd)
      const closing = fd
      fd = undefined
      await close(closing)
      throwIfAborted(signal)
      await rename(tmp, target)
      renamed = true
      await this.#dirs.sync(dir)
      return info(key, st)
    } catch (err) {
      releaseBody(body, checked)
      throw streamFailure(err, `put ${JSON.stringify(key)}`, signal)
    } finally {
      if (fd !== undefined) await close(fd).catch(() => undefined)
      if (created && !renamed) await unlink(tmp).catch(() => undefined)
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
      yield* walkObjects(this.root, dirKey, prefix.slice(cut + 1), signal)
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
      await removeEmptyDirs(emptied, this.#rootSlash)
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

  /**
   * Creates `target` atomically: `make` writes a temporary file next to it (synced, when
   * durable), which is then renamed over it (while the temporary file is in it, no delete
   * can remove the directory), and the directory is synced. Resolves the stats of the new
   * file; removes the temporary file on failure.
   */
  async #viaTemp(target: string, make: (tmp: string) => Promise<Stats>, signal: AbortSignal | undefined): Promise<Stats> {
    const dir = dirname(target)
    const tmp = join(dir, `${TMP_PREFIX}-${this.#tmpTag}-${++this.#tmpSeq}`)
    let renamed = false
    try {
      const st = await this.#dirs.inDir(dir, () => make(tmp))
      throwIfAborted(signal)
      await rename(tmp, target)
      renamed = st.nlink === 1
      await this.#dirs.sync(dir)
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
    const dir = dirname(dst)
    const direct = await this.#dirs.inDir(dir, () => linkAt(dst, !sized))
    if (direct !== 'exists') {
      // A link needs no data sync: it is the source's file, as durable as the source.
      if (direct !== undefined) await this.#dirs.sync(dir)
      return direct
    }
    const [have, want] = await Promise.all([stat(dst).catch(() => undefined), this.#assertSource(src, key)])
    if (have !== undefined && have.ino === want.ino && have.dev === want.dev) {
      // Maybe linked by a call that has not synced it yet.
      await this.#dirs.sync(dir)
      return have
    }
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

  /**
   * Copies the bytes of `src` to the new file `tmp` (a reflink where the filesystem can),
   * synced when durable; resolves its stats.
   */
  async #copyBytes(src: string, tmp: string, key: string): Promise<Stats> {
    try {
      await copyFile(src, tmp, constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL)
    } catch (err) {
      if (ABSENT.has(errno(err)!)) await this.#assertSource(src, key)
      throw err
    }
    return this.#fsync ? fsyncFile(tmp) : stat(tmp)
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
}
