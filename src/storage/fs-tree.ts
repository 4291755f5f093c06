import type { Dir, Dirent, Stats } from 'node:fs'
import { dirname, join } from 'node:path'
import { throwIfAborted } from '../errors.js'
import { lstat, opendir, readdir, rmdir, unlink } from './fs-calls.js'
import { compareKeys } from './keys-validate.js'
import type { ObjectInfo } from './object-store.js'

/**
 * Walking an `FsObjectStore`'s tree: listing objects in key order, sweeping stale
 * temporary files, removing directories a delete left empty; and what the store and these
 * share (the temporary-file prefix, error and time helpers).
 * @internal
 */

/**
 * Name prefix of files being written. They live next to their target (so the final rename
 * stays within one directory), are never listed, and no key segment may start with it.
 */
export const TMP_PREFIX = '.vecsnap-tmp'
/** Files stat'ed, or unlinked, concurrently. */
export const BATCH = 64
/** Directory entries `removeStaleTemps` reads at a time. */
const DIR_READ_ENTRIES = 128
/** Errors where a path does not name a file. */
export const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR'])

export const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code
/**
 * A file's `lastModified`: the later of its mtime and its ctime. A hard link (a `copy`)
 * changes the ctime of the file, not its mtime, so a link made now never looks old (GC's
 * orphan grace counts from here); so do a rename, a `chmod` and the removal of another link.
 */
export const modifiedMs = (st: Stats): number => Math.floor(Math.max(st.mtimeMs, st.ctimeMs))
export const info = (key: string, st: Stats): ObjectInfo => ({ key, size: st.size, lastModified: modifiedMs(st) })

interface WalkItem {
  name: string
  /** `name`, plus '/' for a directory: sorting these orders the keys below them too. */
  sortKey: string
  dir: boolean
}

/** Yields the objects under `dirKey` ('' or ending in '/') of `root` whose next segment starts with `namePrefix`, in key order. */
export async function* walkObjects(root: string, dirKey: string, namePrefix: string, signal: AbortSignal | undefined): AsyncGenerator<ObjectInfo> {
  const dir = dirKey === '' ? root : join(root, dirKey)
  let entries: Dirent[]
  try {
    entries = await readdir(dir)
  } catch (err) {
    if (ABSENT.has(errno(err)!)) return
    throw err
  }
  const items: WalkItem[] = []
  for (const entry of entries) {
    const name = entry.name
    if (name.startsWith(TMP_PREFIX) || !name.startsWith(namePrefix) || name.includes('\\')) continue
    if (entry.isDirectory()) items.push({ name, sortKey: `${name}/`, dir: true })
    else if (entry.isFile()) items.push({ name, sortKey: name, dir: false })
  }
  items.sort((a, b) => compareKeys(a.sortKey, b.sortKey))
  let i = 0
  while (i < items.length) {
    throwIfAborted(signal)
    if (items[i].dir) {
      yield* walkObjects(root, `${dirKey}${items[i].name}/`, '', signal)
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

/**
 * Best effort: removes the temporary files under `dir` unchanged since `before` (by
 * `modifiedMs`: a temporary link to an old file has an old mtime but a new ctime).
 * Reads each directory a few entries at a time (a collection's log directory holds a
 * subdirectory per segment: read whole, 100k segments were ~8 MB of entries held for the
 * whole walk below it). Resolves how many it removed.
 */
export async function removeStaleTemps(dir: string, before: number, signal: AbortSignal | undefined): Promise<number> {
  throwIfAborted(signal)
  let handle: Dir
  try {
    handle = await opendir(dir, DIR_READ_ENTRIES)
  } catch (err) {
    if (ABSENT.has(errno(err)!)) return 0
    throw err
  }
  let removed = 0
  const temps: string[] = []
  const removeTemps = async (): Promise<void> => {
    const done = await Promise.all(
      temps.splice(0).map(async (path) => {
        const st = await lstat(path).catch(() => undefined)
        if (st === undefined || !st.isFile() || modifiedMs(st) >= before) return false
        return unlink(path).then(
          () => true,
          () => false,
        )
      }),
    )
    removed += done.filter(Boolean).length
  }
  // Closes the directory however the loop ends.
  for await (const e of handle) {
    throwIfAborted(signal)
    if (e.isFile() && e.name.startsWith(TMP_PREFIX)) {
      temps.push(join(dir, e.name))
      if (temps.length >= BATCH) await removeTemps()
    } else if (e.isDirectory()) {
      removed += await removeStaleTemps(join(dir, e.name), before, signal)
    }
  }
  await removeTemps()
  return removed
}

/** Best effort: removes the given directories and their ancestors below `rootSlash` while they are empty. */
export async function removeEmptyDirs(dirs: Set<string>, rootSlash: string): Promise<void> {
  const deepestFirst = [...dirs].sort((a, b) => b.length - a.length)
  for (let dir of deepestFirst) {
    while (dir.startsWith(rootSlash)) {
      try {
        await rmdir(dir)
      } catch {
        break
      }
      dir = dirname(dir)
    }
  }
}
