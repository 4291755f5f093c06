import { randomUUID } from 'node:crypto'
import type { ManagerContext } from '../context.js'
import { keys } from '../meta/keys.js'
import type { ObjectStore } from '../storage/object-store.js'
import type { LoadedSnapshot } from '../snapshot/snapshot-store.js'
import type { HoldSnapshotOptions } from '../snapshot/snapshot-types.js'
import type { AbortOptions } from '../types.js'
import type { RepositoryProgress } from './repository-types.js'

/**
 * What the repository service needs from the rest of the manager.
 * @internal
 */
export interface RepositoryDeps {
  ctx: ManagerContext
  /** The ObjectStore as given to the manager (to tell a repository in the same store). */
  rawObjects: ObjectStore
  /** The snapshot store's calls an export uses. */
  snapshots: {
    load(name: string, options?: AbortOptions): Promise<LoadedSnapshot>
    hold(name: string, options: HoldSnapshotOptions): Promise<void>
    release(name: string, tag: string, options?: AbortOptions): Promise<void>
  }
}

/** Files copied or verified concurrently by an export or an import. */
export const TRANSFER_CONCURRENCY = 4

/** This MetaStore's ID (`v/store-id`), written the first time it is asked for. */
export async function storeIdOf(ctx: ManagerContext, options: AbortOptions = {}): Promise<string> {
  const found = await ctx.meta.get(keys.storeId, options)
  if (found !== undefined) return found
  return ctx.transactor.run(async (tx) => {
    const again = await tx.get(keys.storeId)
    if (again !== undefined) return again
    const id = randomUUID()
    tx.put(keys.storeId, id)
    return id
  }, options)
}

/** Throws a `TypeError` unless `fn` is undefined or a function. */
export function expectCallback(fn: unknown, param: string): void {
  if (fn !== undefined && typeof fn !== 'function') throw new TypeError(`Expected \`${param}\` to be a function, got \`${fn === null ? 'null' : typeof fn}\``)
}

/** Counts of a transfer, reported through `onProgress`. */
export class TransferCounts implements RepositoryProgress {
  totalFiles = 0
  totalBytes = 0
  copiedFiles = 0
  copiedBytes = 0
  skippedFiles = 0
  skippedBytes = 0
  readonly #onProgress: ((p: RepositoryProgress) => void) | undefined

  constructor(onProgress: ((p: RepositoryProgress) => void) | undefined) {
    this.#onProgress = onProgress
  }

  copied(size: number): void {
    this.copiedFiles++
    this.copiedBytes += size
    this.#report()
  }

  skipped(size: number): void {
    this.skippedFiles++
    this.skippedBytes += size
    this.#report()
  }

  #report(): void {
    if (this.#onProgress === undefined) return
    const { totalFiles, totalBytes, copiedFiles, copiedBytes, skippedFiles, skippedBytes } = this
    // A throwing callback is the caller's bug; it must not fail the transfer.
    try {
      this.#onProgress({ totalFiles, totalBytes, copiedFiles, copiedBytes, skippedFiles, skippedBytes })
    } catch {
      /* ignored */
    }
  }
}
