import { SnapshotError, throwIfAborted } from '../errors.js'
import { Mutex } from '../util/mutex.js'
import type { CampaignOptions, LeadershipHandlers, LoopLeadership } from './leadership.js'

/**
 * The default {@link LoopLeadership}: the candidate is elected at once and stays leader
 * until it resigns. Right for a store that one process owns (LevelDB, memory), where
 * every manager on it runs its own loops. Managers of several processes sharing one
 * etcd need `EtcdLeadership` instead, which `EtcdMetaStore` provides by itself.
 *
 * It has no `candidates()`: on a store one process owns, recovery at `open()` treats
 * every unfinished record of an earlier run as abandoned, as a single-node store should.
 */
export class LocalLeadership implements LoopLeadership {
  readonly #mutex = new Mutex()
  #handlers: LeadershipHandlers | undefined
  #candidateId: string | undefined
  #leading = false
  #term: AbortController | undefined

  /** True between a successful `elected()` and the matching `demoted()`. */
  get leading(): boolean {
    return this.#leading
  }

  /** Elects the candidate at once: resolves once `handlers.elected()` resolved, rejects with its error. */
  campaign(handlers: LeadershipHandlers, options: CampaignOptions): Promise<void> {
    return this.#mutex.run(async () => {
      throwIfAborted(options.signal)
      if (this.#candidateId !== undefined) throw new SnapshotError('FAILED_PRECONDITION', 'this leadership is already campaigning; resign first')
      if (typeof options.candidateId !== 'string' || options.candidateId === '') {
        throw new TypeError(`Expected \`candidateId\` to be a non-empty string, got \`${String(options.candidateId)}\``)
      }
      this.#handlers = handlers
      this.#candidateId = options.candidateId
      this.#term = new AbortController()
      try {
        await handlers.elected(this.#term.signal)
        this.#leading = true
      } catch (err) {
        this.#term = undefined
        this.#candidateId = undefined
        this.#handlers = undefined
        throw err
      }
    })
  }

  /** Calls `demoted('resigned')` if leading and stops campaigning. Idempotent. */
  resign(): Promise<void> {
    return this.#mutex.run(async () => {
      const handlers = this.#handlers
      const id = this.#candidateId
      if (handlers === undefined || id === undefined) return
      this.#term?.abort(new SnapshotError('ABORTED', 'resigned'))
      this.#term = undefined
      try {
        if (this.#leading) {
          this.#leading = false
          await handlers.demoted('resigned')
        }
      } finally {
        this.#candidateId = undefined
        this.#handlers = undefined
      }
    })
  }
}
