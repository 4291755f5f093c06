import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { SnapshotError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { decodeLock, encodeLock, LOCK_FORMAT_VERSION, lockKey, REPOSITORY_LOCKS_PREFIX, type LockKind, type RepositoryLockRecord } from './repository-format.js'
import type { RepositoryStore } from './repository-store.js'

/**
 * Repository locks (restic's protocol): an export and a prune of one repository never
 * overlap.
 *
 * Why: an export skips a file the repository already holds, and writes its entry (which
 * names that file) only at the end; a prune deletes files no entry names. A prune between
 * the two would delete a file the export counts on, and the entry would name a missing
 * file. Exports may run together (they only add), so an export takes a **shared** lock and
 * a prune an **exclusive** one. Reading (list, verify, import, a dry-run prune) takes none:
 * it works on a read-only repository, and the worst a concurrent prune does to it is make
 * it fail (`CORRUPT`: a file it reads is gone with its entry).
 *
 * The protocol, on any store whose listing shows a completed write (S3, a filesystem):
 * write your lock, then list the locks; on a conflicting live lock, delete yours and fail
 * with `IN_USE`. Of two lockers that conflict, the one that lists second sees the other's
 * lock (both may see each other and both back off; neither proceeds unseen).
 *
 * A lock is renewed every {@link LOCK_RENEW_MS} and is stale (its holder crashed) once not
 * renewed for {@link LOCK_STALE_MS}, by the locker's clock: other lockers ignore it, and a
 * prune deletes the stale locks it saw. A holder whose own lock went stale (its process was
 * suspended, or every renewal failed) may have been overtaken by a prune: {@link
 * RepositoryLock.assertFresh} refuses to go on (`FAILED_PRECONDITION`).
 * @internal
 */

/** A lock not renewed for this long is stale. */
export const LOCK_STALE_MS = 30 * 60_000

/** How often a holder renews its lock. */
export const LOCK_RENEW_MS = 5 * 60_000

/** Lockers that cannot both hold the repository. */
function conflicts(a: LockKind, b: LockKind): boolean {
  return a === 'prune' || b === 'prune'
}

/** A lock this process holds on a repository. */
export class RepositoryLock {
  readonly key: string
  readonly #repo: RepositoryStore
  readonly #now: () => number
  readonly #record: RepositoryLockRecord
  readonly #renew: NodeJS.Timeout
  /** When the lock was last written. */
  #renewedAt: number
  /** Set once the lock went stale before a renewal: it is never fresh again. */
  #lost = false
  /** The renewal under way, awaited by `release` (so that none lands after the delete). */
  #renewing: Promise<void> | undefined

  private constructor(repo: RepositoryStore, key: string, record: RepositoryLockRecord, now: () => number) {
    this.#repo = repo
    this.key = key
    this.#record = record
    this.#now = now
    this.#renewedAt = record.renewedAt
    this.#renew = setInterval(() => {
      if (this.#renewing !== undefined) return
      const renewedAt = this.#now()
      // Stale already: another locker may have ignored or deleted it meanwhile. Renewing now
      // would make it look fresh to assertFresh; it stays lost instead.
      if (renewedAt - this.#renewedAt >= LOCK_STALE_MS) {
        this.#lost = true
        clearInterval(this.#renew)
        return
      }
      this.#renewing = this.#repo
        .put(this.key, encodeLock({ ...this.#record, renewedAt }))
        .then(
          () => {
            this.#renewedAt = renewedAt
          },
          // A failed renewal is retried at the next tick; assertFresh catches a lock that went stale.
          () => undefined,
        )
        .finally(() => {
          this.#renewing = undefined
        })
    }, LOCK_RENEW_MS)
    this.#renew.unref()
  }

  /**
   * Takes a `kind` lock on the repository, or rejects with `IN_USE` (naming the holder)
   * when a live conflicting lock exists. `now` is the locker's clock (the manager's).
   */
  static async acquire(repo: RepositoryStore, kind: LockKind, now: () => number, options: AbortOptions = {}): Promise<RepositoryLock> {
    const { signal } = options
    const key = lockKey(randomUUID())
    const at = now()
    const record: RepositoryLockRecord = { vecsnapLock: LOCK_FORMAT_VERSION, kind, createdAt: at, renewedAt: at, holder: `${hostname()}:${process.pid}` }
    await repo.put(key, encodeLock(record), { signal })
    try {
      const stale: string[] = []
      for await (const info of repo.list(REPOSITORY_LOCKS_PREFIX, { signal })) {
        if (info.key === key) continue
        const bytes = await repo.get(info.key, { signal })
        if (bytes === undefined) continue // released since the listing
        let other: RepositoryLockRecord | undefined
        try {
          other = decodeLock(bytes, info.key)
        } catch (err) {
          // A lock this build cannot read (damaged, a newer format) counts as held until its object is stale.
          if (!SnapshotError.is(err, 'CORRUPT') && !SnapshotError.is(err, 'UNSUPPORTED_VERSION')) throw err
        }
        const renewedAt = other?.renewedAt ?? info.lastModified
        if (now() - renewedAt >= LOCK_STALE_MS) {
          stale.push(info.key)
          continue
        }
        if (other === undefined || conflicts(kind, other.kind)) {
          const what = other === undefined ? `a lock this version cannot read (${info.key})` : `${other.kind === 'export' ? 'an' : 'a'} ${other.kind} (${other.holder}, lock ${info.key}, renewed ${new Date(other.renewedAt).toISOString()})`
          throw new SnapshotError('IN_USE', `the repository is in use by ${what}; try again once it ends (a lock not renewed for ${LOCK_STALE_MS / 60_000} minutes is ignored)`, {
            details: { lock: info.key, kind: other?.kind, holder: other?.holder },
          })
        }
      }
      // Only a prune, alone in the repository, removes what crashed holders left.
      if (kind === 'prune' && stale.length > 0) await repo.delete(stale, { signal })
    } catch (err) {
      await repo.delete([key]).catch(() => undefined)
      throw err
    }
    return new RepositoryLock(repo, key, record, now)
  }

  /**
   * Throws `FAILED_PRECONDITION` when this lock has gone stale (not written for {@link
   * LOCK_STALE_MS}): another locker may have ignored it since. Call it before the write
   * that relies on the lock (an export's entry).
   */
  assertFresh(): void {
    const age = this.#now() - this.#renewedAt
    if (this.#lost || age >= LOCK_STALE_MS) {
      throw new SnapshotError('FAILED_PRECONDITION', `the ${this.#record.kind}'s lock ${this.key} was not renewed for ${Math.round(age / 60_000)} minutes (the process was suspended or the repository unreachable), so a prune may have run meanwhile: run it again`, {
        details: { lock: this.key },
      })
    }
  }

  /** Stops renewing and deletes the lock (a failed delete leaves a lock that goes stale). */
  async release(): Promise<void> {
    clearInterval(this.#renew)
    await this.#renewing
    await this.#repo.delete([this.key]).catch(() => undefined)
  }
}
