import { SnapshotError, throwIfAborted } from '../errors.js'
import type { SnapshotInfo, VerifyReport } from '../snapshot/snapshot-types.js'
import { forEachLimit } from '../util/for-each-limit.js'
import { exportSnapshot } from './export.js'
import { importSnapshot } from './import.js'
import { pruneRepository } from './repository-prune.js'
import type { PruneReport } from '../policy/retention.js'
import { TRANSFER_CONCURRENCY, type RepositoryDeps } from './repository-deps.js'
import { entryKey, entryObjects, type EntryObject, type RepositoryEntry } from './repository-format.js'
import { expectObjectStore, normalizePrefix, RepositoryStore } from './repository-store.js'
import { hashStream } from './sha256.js'
import type {
  ExportReport,
  ExportSnapshotOptions,
  ImportSnapshotRequest,
  PruneRepositoryOptions,
  RepositoryOptions,
  RepositoryReadData,
  RepositorySnapshotInfo,
  VerifyRepositoryOptions,
} from './repository-types.js'

/** The repository a `{ store, prefix }` option names. */
export function repositoryOf(options: RepositoryOptions): RepositoryStore {
  if (typeof options !== 'object' || options === null) throw new TypeError(`Expected \`options\` to be an object with a \`store\`, got \`${options === null ? 'null' : typeof options}\``)
  expectObjectStore(options.store, 'store')
  return new RepositoryStore(options.store, normalizePrefix(options.prefix))
}

/** The public view of an entry. */
export function toRepositorySnapshotInfo(e: RepositoryEntry): RepositorySnapshotInfo {
  return {
    repositorySnapshotId: e.id,
    snapshotName: e.snapshot.name,
    collectionName: e.snapshot.collectionName,
    createdAt: e.snapshot.createdAt,
    exportedAt: e.exportedAt,
    segmentCount: e.snapshot.segmentCount,
    rowCount: e.snapshot.rowCount,
    sizeBytes: e.snapshot.sizeBytes,
  }
}

const READ_DATA: readonly RepositoryReadData[] = ['none', 'sample', 'all']

/** Fraction of the files whose SHA-256 `readData: 'sample'` checks (at least one). */
export const VERIFY_SAMPLE_FRACTION = 0.1

/** `count` distinct random positions below `n`. */
function sample(n: number, count: number): Set<number> {
  const picked = new Set<number>()
  while (picked.size < Math.min(n, count)) picked.add(Math.floor(Math.random() * n))
  return picked
}

/**
 * Repositories (SPEC section 14): export, import, list, verify and prune. A repository is a
 * prefix of any ObjectStore; see `repository-format.ts` for its keys.
 * @internal
 */
export class RepositoryService {
  readonly #deps: RepositoryDeps

  constructor(deps: RepositoryDeps) {
    this.#deps = deps
  }

  /** Copies a committed snapshot into a repository (what it lacks only). */
  export(snapshotName: string, options: ExportSnapshotOptions): Promise<ExportReport> {
    return exportSnapshot(this.#deps, snapshotName, options)
  }

  /** Registers a repository entry as a committed snapshot of this manager. */
  import(request: ImportSnapshotRequest): Promise<SnapshotInfo> {
    return importSnapshot(this.#deps, request)
  }

  /** Every entry of the repository, by `createdAt` then ID. `NOT_FOUND` when the prefix holds no repository. */
  async list(options: RepositoryOptions): Promise<RepositorySnapshotInfo[]> {
    const repo = repositoryOf(options)
    const { signal } = options
    throwIfAborted(signal)
    await repo.requireInfo({ signal })
    const out = (await repo.entries({ signal })).map(toRepositorySnapshotInfo)
    return out.sort((a, b) => a.createdAt - b.createdAt || (a.repositorySnapshotId < b.repositorySnapshotId ? -1 : 1))
  }

  /**
   * Checks every file every entry references, each once: existence and size (`none`), and
   * the SHA-256 of a random sample (`sample`) or of all (`all`). An entry that does not
   * read back is reported `corrupt` under its own key.
   */
  async verify(options: VerifyRepositoryOptions): Promise<VerifyReport> {
    const repo = repositoryOf(options)
    const readData = options.readData ?? 'none'
    if (typeof readData !== 'string') throw new TypeError(`Expected \`readData\` to be a string, got \`${typeof readData}\``)
    if (!READ_DATA.includes(readData)) throw new SnapshotError('INVALID_ARGUMENT', `\`readData\` must be one of ${READ_DATA.join(', ')}, got ${JSON.stringify(readData)}`)
    const { signal } = options
    throwIfAborted(signal)
    await repo.requireInfo({ signal })
    const missing = new Set<string>()
    const corrupt = new Set<string>()
    const files = new Map<string, EntryObject>()
    for (const id of await repo.entryIds({ signal })) {
      let entry: RepositoryEntry | undefined
      try {
        entry = await repo.readEntry(id, { signal })
      } catch (err) {
        if (!SnapshotError.is(err, 'CORRUPT') && !SnapshotError.is(err, 'UNSUPPORTED_VERSION')) throw err
        corrupt.add(entryKey(id))
      }
      if (entry === undefined) continue
      for (const o of entryObjects(entry)) {
        const seen = files.get(o.key)
        // Two entries naming one key with different content: the key cannot be both.
        if (seen !== undefined && (seen.size !== o.size || seen.sha256 !== o.sha256)) corrupt.add(o.key)
        else files.set(o.key, o)
      }
    }
    const all = [...files.values()]
    const toHash = readData === 'all' ? undefined : readData === 'sample' ? sample(all.length, Math.max(1, Math.ceil(all.length * VERIFY_SAMPLE_FRACTION))) : new Set<number>()
    await forEachLimit(all, TRANSFER_CONCURRENCY, async (o, i) => {
      const head = await repo.head(o.key, { signal })
      if (head === undefined) {
        missing.add(o.key)
        return
      }
      if (head.size !== o.size) {
        corrupt.add(o.key)
        return
      }
      if (toHash !== undefined && !toHash.has(i)) return
      const body = await repo.readStream(o.key, { signal })
      if (body === undefined) {
        missing.add(o.key)
        return
      }
      const hashed = await hashStream(body)
      if (hashed.size !== o.size || hashed.sha256 !== o.sha256) corrupt.add(o.key)
    }, signal)
    return { ok: missing.size === 0 && corrupt.size === 0, checkedFiles: all.length, missing: [...missing].sort(), corrupt: [...corrupt].sort() }
  }

  /** Applies a retention policy to the entries and deletes the files no remaining entry references. */
  prune(options: PruneRepositoryOptions): Promise<PruneReport> {
    return pruneRepository(this.#deps, repositoryOf(options), options)
  }
}
