import { dirname } from 'node:path'
import { fsyncDir, mkdir, mkdirp, stat } from './fs-calls.js'
import { errno } from './fs-tree.js'
import { GroupSync } from './group-sync.js'

/** Attempts of a write into a directory (a concurrent delete may remove it while it is empty). */
const DIR_ATTEMPTS = 5
/** Directories remembered as existing; the set starts over when it grows past this (kept small: a long-lived set that churns allocates its tables in old space). */
const KNOWN_DIRS = 1024

/**
 * The directories under an `FsObjectStore`'s root: creates them on demand (one `mkdir` per
 * directory at a time, parents first), remembers those that exist, `fsync`s them when the
 * store is durable (grouping concurrent syncs of one directory), and retries a write whose
 * directory a concurrent `delete` removed.
 * @internal
 */
export class Directories {
  readonly #rootSlash: string
  readonly #fsync: boolean
  /**
   * Directories this store created or saw exist. Only a hint: a concurrent delete may
   * remove one once it is empty, and every write retries in a fresh directory on ENOENT.
   */
  readonly #known = new Set<string>()
  /** `mkdir` calls under way, by directory. */
  readonly #making = new Map<string, Promise<void>>()
  /** Directory syncs, grouped per directory. */
  readonly #syncs = new GroupSync((dir) => fsyncDir(dir))

  /** `rootSlash`: the absolute root, ending in the path separator. */
  constructor(rootSlash: string, fsync: boolean) {
    this.#rootSlash = rootSlash
    this.#fsync = fsync
  }

  /** `fsync`s `dir` (grouped with concurrent syncs of it) unless the store is not durable. */
  async sync(dir: string): Promise<void> {
    if (this.#fsync) await this.#syncs.sync(dir)
  }

  /**
   * Runs `write` (which creates a file in `dir`) in an existing `dir`: creates it first,
   * and again (forgetting it and its parents) when creating it or `write` fails with
   * ENOENT because a concurrent delete removed it.
   * `write` must tell a missing source apart itself (by throwing `NOT_FOUND`).
   */
  async inDir<T>(dir: string, write: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const making = this.#ensure(dir)
        if (making !== undefined) await making
        return await write()
      } catch (err) {
        // A delete pruned `dir` or a parent the store believed in (before or during the mkdir).
        if (errno(err) !== 'ENOENT' || attempt >= DIR_ATTEMPTS) throw err
        for (let d = dir; d.startsWith(this.#rootSlash); d = dirname(d)) this.#known.delete(d)
      }
    }
  }

  /** Creates `dir` (and its parents) unless it is known to exist; one `mkdir` per directory at a time. */
  #ensure(dir: string): Promise<void> | undefined {
    if (this.#known.has(dir)) return undefined
    let making = this.#making.get(dir)
    if (making === undefined) {
      making = this.#make(dir).then(
        () => {
          this.#making.delete(dir)
          if (this.#known.size >= KNOWN_DIRS) this.#known.clear()
          this.#known.add(dir)
        },
        (err: unknown) => {
          this.#making.delete(dir)
          throw err
        },
      )
      this.#making.set(dir, making)
    }
    return making
  }

  /**
   * Creates `dir` below the root: its parent first (through `#ensure`, so the sibling
   * directories of a new segment share one `mkdir` of it), then `dir` alone. A recursive
   * `mkdir` would instead fail on the missing parent first, then create it, then retry, for
   * every new directory.
   */
  async #make(dir: string): Promise<void> {
    const parent = dirname(dir)
    if (parent === dir || !parent.startsWith(this.#rootSlash)) {
      // The root: each directory made has its name in its parent, up to the root's parent.
      const first = await mkdirp(dir)
      if (first !== undefined && this.#fsync) {
        for (let d = dir; d !== dirname(first); d = dirname(d)) await this.sync(dirname(d))
      }
      return
    }
    await this.#ensure(parent)
    try {
      await mkdir(dir)
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err
      // Made by someone else; a file there is an error. Synced below all the same: its
      // maker may not have synced it yet, and what this store writes into it relies on it.
      if (!(await stat(dir)).isDirectory()) throw err
    }
    await this.sync(parent)
  }
}
