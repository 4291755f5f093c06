import type { Campaign, Election, Lease, Namespace } from 'etcd3'
import { SnapshotError, throwIfAborted, toIoError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { Mutex } from '../util/mutex.js'
import type { CampaignOptions, DemotionReason, LeadershipHandlers, LoopLeadership } from './leadership.js'

/** Options of {@link EtcdLeadership}. */
export interface EtcdLeadershipOptions {
  /**
   * The etcd3 client (or a namespace of it), or a function returning it when the
   * candidate campaigns (`EtcdMetaStore#createLeadership` passes its own, open, client).
   */
  client: Namespace | (() => Namespace)
  /**
   * Key prefix of the election: candidates are `${prefix}election/${name}/${leaseId}`.
   * @default 'vecsnap/l/'
   */
  prefix?: string
  /** Election name; managers that should elect one runner among them use the same name. @default 'loops' */
  name?: string
  /**
   * Session lease TTL in seconds: a dead or disconnected leader is replaced within about
   * this long. etcd refuses TTLs below its minimum (1.5 s with default heartbeat settings).
   * @default 10
   */
  ttlSeconds?: number
}

/** A keep-alive gap longer than this share of the TTL makes the leader step down. */
const EXPIRY_SHARE = 2 / 3

/** One campaign (one lease) of the candidate. */
interface Round {
  campaign: Campaign
  /** The round `campaign()` started: its failure rejects `campaign()` instead of retrying. */
  initial: boolean
  /** When the lease last answered a keep-alive (or was created). */
  lastKeepAlive: number
  /** Fires when this round's leadership ends. */
  term: AbortController
  watchdog?: NodeJS.Timeout
}

/**
 * Cancels the watch etcd3's Campaign keeps open while it waits for its turn: `resign()`
 * does not, and an open watch stream keeps the client (and the process) alive after
 * `close()`. Every round has its own Election, so its namespace watches nothing else.
 */
function cancelWatches(campaign: Campaign): void {
  type Internals = { namespace?: { watchManager?: { watchers?: { cancel(): Promise<void> }[] } } }
  const watchers = (campaign as unknown as Internals).namespace?.watchManager?.watchers ?? []
  for (const watcher of [...watchers]) watcher.cancel().catch(() => undefined)
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/**
 * A {@link LoopLeadership} on an etcd lease-based election (etcd3's
 * `election(name, ttl).campaign(candidateId)`, the same protocol as etcd's Go
 * `concurrency.Election`): of all candidates on one etcd and prefix, the one with the
 * oldest key leads; the others wait for the keys before them to be deleted.
 *
 * Every candidate holds a lease of `ttlSeconds`, kept alive by the client. When the
 * leader's process dies its lease expires and the next candidate is elected within the
 * TTL. A leader that sees no successful keep-alive for two thirds of the TTL steps down
 * (`demoted('lease-expiring')`) before the server can expire its lease, so its loops stop
 * before a successor's start; it is not a fencing token, which is why every write of the
 * loops is also a conditional batch. A lost campaign is started again after a pause.
 *
 * Obtain one with `EtcdMetaStore#createLeadership`; `SnapshotManager` does so by itself
 * when its `meta` is an `EtcdMetaStore`.
 *
 * @example
 * import { EtcdMetaStore } from 'vecsnap/etcd'
 * const meta = new EtcdMetaStore({ hosts: 'http://127.0.0.1:2379' })
 * const manager = new SnapshotManager({ meta, objects, leadership: meta.createLeadership('loops', { ttlSeconds: 5 }) })
 */
export class EtcdLeadership implements LoopLeadership {
  /** Election name. */
  readonly name: string
  /** Lease TTL in seconds. */
  readonly ttlSeconds: number
  readonly #client: () => Namespace
  readonly #prefix: string
  readonly #mutex = new Mutex()
  #handlers: LeadershipHandlers | undefined
  #candidateId: string | undefined
  /** Campaigning and not resigned. */
  #active = false
  #round: Round | undefined
  #leading = false
  #retry: NodeJS.Timeout | undefined
  /** Lease revocations of abandoned rounds still in flight; `resign()` waits for them. */
  readonly #revoking = new Set<Promise<void>>()

  /** Validates the options; nothing is sent to etcd before `campaign()`. */
  constructor(options: EtcdLeadershipOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected \`options\` to be an object, got \`${String(options)}\``)
    const { client, prefix = 'vecsnap/l/', name = 'loops', ttlSeconds = 10 } = options
    if (typeof client !== 'function' && (typeof client !== 'object' || client === null)) {
      throw new TypeError('Expected `client` to be an etcd3 client or a function returning one')
    }
    if (typeof prefix !== 'string') throw new TypeError(`Expected \`prefix\` to be a string, got \`${String(prefix)}\``)
    if (typeof name !== 'string' || name === '' || name.includes('/')) throw new TypeError(`Expected \`name\` to be a non-empty string without '/', got \`${String(name)}\``)
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) throw new TypeError(`Expected \`ttlSeconds\` to be an integer ≥ 1, got \`${String(ttlSeconds)}\``)
    this.#client = typeof client === 'function' ? client : () => client
    this.#prefix = prefix
    this.name = name
    this.ttlSeconds = ttlSeconds
  }

  /** True between a successful `elected()` and the matching `demoted()`. */
  get leading(): boolean {
    return this.#leading
  }

  /** Pause before campaigning again after a lost or failed campaign. */
  get #retryDelayMs(): number {
    return Math.min(1_000, (this.ttlSeconds * 1_000) / 4)
  }

  /**
   * Registers the candidate. Resolves once its key is written and either another
   * candidate leads or this one was elected and `elected()` resolved. Rejects with
   * `IO_ERROR` when etcd cannot be reached, or with the error of `elected()`; either way
   * the candidate is not campaigning afterwards.
   */
  async campaign(handlers: LeadershipHandlers, options: CampaignOptions): Promise<void> {
    throwIfAborted(options.signal)
    if (typeof options.candidateId !== 'string' || options.candidateId === '') {
      throw new TypeError(`Expected \`candidateId\` to be a non-empty string, got \`${String(options.candidateId)}\``)
    }
    if (this.#active || this.#handlers !== undefined) throw new SnapshotError('FAILED_PRECONDITION', 'this leadership is already campaigning; resign first')
    this.#active = true
    this.#handlers = handlers
    this.#candidateId = options.candidateId
    try {
      await this.#start(true)
    } catch (err) {
      await this.resign().catch(() => undefined)
      throw toIoError(err, `campaigning for etcd election ${this.name}`)
    }
  }

  /**
   * Starts one round. The promise settles with the round's first outcome: waiting behind
   * another candidate, elected (after `elected()` resolved), or failed.
   */
  #start(initial: boolean): Promise<void> {
    const candidateId = this.#candidateId
    if (!this.#active || candidateId === undefined) return Promise.resolve()
    let campaign: Campaign
    let election: Election
    try {
      election = this.#client().namespace(this.#prefix).election(this.name, this.ttlSeconds)
      campaign = election.campaign(candidateId)
    } catch (err) {
      return Promise.reject(err)
    }
    const round: Round = { campaign, initial, lastKeepAlive: Date.now(), term: new AbortController() }
    this.#round = round
    // The lease is private in etcd3; without it the watchdog only relies on `lost`.
    const lease = (campaign as unknown as { lease?: Lease }).lease
    lease?.on('keepaliveSucceeded', () => {
      round.lastKeepAlive = Date.now()
    })
    return new Promise<void>((resolve, reject) => {
      let settled = false
      let poll: NodeJS.Timeout | undefined
      const settle = (err?: unknown) => {
        clearInterval(poll)
        if (settled) return
        settled = true
        if (err === undefined) resolve()
        else reject(err)
      }
      // Emitted by etcd3 once the key is written and an older candidate leads.
      campaign.once('_isWaiting', () => settle())
      // The same, should a later etcd3 not emit that internal event: another candidate leads.
      poll = setInterval(() => {
        election.leader().then(
          (leader) => {
            if (leader !== undefined && leader !== candidateId) settle()
          },
          () => undefined,
        )
      }, 500)
      poll.unref()
      round.term.signal.addEventListener('abort', () => clearInterval(poll), { once: true })
      campaign.on('elected', () => {
        this.#mutex.run(() => this.#elected(round)).then(
          () => settle(),
          (err: unknown) => {
            if (initial && !settled) return settle(err)
            this.#handlers?.error?.(asError(err))
          },
        )
      })
      campaign.on('error', (err: Error) => {
        round.term.abort(err)
        if (initial && !settled) {
          settle(err)
          this.#abandon(round)
          return
        }
        this.#handlers?.error?.(toIoError(err, `etcd election ${this.name}`))
        void this.#lost(round, 'lease-lost')
      })
    })
  }

  /** Runs `elected()` for `round` if it is still current; steps down when it rejects. */
  async #elected(round: Round): Promise<void> {
    const handlers = this.#handlers
    if (round !== this.#round || !this.#active || handlers === undefined || round.term.signal.aborted) return
    try {
      await handlers.elected(round.term.signal)
    } catch (err) {
      // Cut short by the loss of leadership (or `resign`): not a failure of its own; the
      // `#lost` or `resign` under way takes it from here.
      if (round.term.signal.aborted) return
      // Let another candidate try: step down, and campaign again later (unless this was
      // the initial round, whose failure rejects `campaign()`).
      round.term.abort(err)
      this.#abandon(round)
      if (!round.initial) this.#scheduleRetry()
      throw err
    }
    this.#leading = true
    // Lost while `elected()` ran: the queued `#lost` (or `resign`) demotes.
    if (round !== this.#round || round.term.signal.aborted) return
    const limitMs = this.ttlSeconds * 1_000 * EXPIRY_SHARE
    round.watchdog = setInterval(() => {
      if (Date.now() - round.lastKeepAlive > limitMs) {
        round.term.abort(new SnapshotError('IO_ERROR', `no etcd keep-alive for ${Date.now() - round.lastKeepAlive} ms`))
        void this.#lost(round, 'lease-expiring')
      }
    }, Math.max(50, limitMs / 4))
    round.watchdog.unref()
  }

  /** The round ended without `resign()`: step down, revoke its lease, campaign again. */
  async #lost(round: Round, reason: DemotionReason): Promise<void> {
    const handled = await this.#mutex.run(async () => {
      if (round !== this.#round) return false
      this.#abandon(round)
      await this.#demote(reason)
      return true
    })
    if (handled) this.#scheduleRetry()
  }

  /** Forgets `round` and revokes its lease in the background (it may be gone already). */
  #abandon(round: Round): void {
    clearInterval(round.watchdog)
    if (this.#round === round) this.#round = undefined
    const revoke = round.campaign.resign().catch(() => undefined)
    this.#revoking.add(revoke)
    void revoke.finally(() => this.#revoking.delete(revoke))
    cancelWatches(round.campaign)
  }

  async #demote(reason: DemotionReason): Promise<void> {
    if (!this.#leading) return
    this.#leading = false
    try {
      await this.#handlers?.demoted(reason)
    } catch (err) {
      this.#handlers?.error?.(asError(err))
    }
  }

  #scheduleRetry(): void {
    if (!this.#active || this.#retry !== undefined) return
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (!this.#active || this.#round !== undefined) return
      // Failures of the campaign surface as the round's `error` event, which schedules the
      // next retry; only a failure to start the round at all lands here.
      this.#start(false).catch((err: unknown) => {
        this.#handlers?.error?.(toIoError(err, `campaigning for etcd election ${this.name}`))
        this.#scheduleRetry()
      })
    }, this.#retryDelayMs)
    this.#retry.unref()
  }

  /**
   * Stops campaigning: calls `demoted('resigned')` if leading (so the loops stop before
   * another candidate can be elected), then revokes the lease. Idempotent.
   */
  async resign(): Promise<void> {
    this.#active = false
    clearTimeout(this.#retry)
    this.#retry = undefined
    this.#round?.term.abort(new SnapshotError('ABORTED', 'resigned'))
    await this.#mutex.run(async () => {
      const round = this.#round
      if (round !== undefined) {
        clearInterval(round.watchdog)
        this.#round = undefined
      }
      await this.#demote('resigned')
      // Revoking hands over at once; if etcd is unreachable the lease expires by itself.
      // Revocations of rounds abandoned earlier (a failed `elected()`) are awaited too, so
      // no candidate key of this leadership outlives `resign()`.
      const revokes = [...this.#revoking]
      if (round !== undefined) revokes.push(round.campaign.resign().catch(() => undefined))
      if (revokes.length > 0) {
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<void>((r) => {
          timer = setTimeout(r, this.ttlSeconds * 1_000)
          timer.unref()
        })
        await Promise.race([Promise.all(revokes), timeout])
        clearTimeout(timer)
      }
      if (round !== undefined) cancelWatches(round.campaign)
      this.#handlers = undefined
      this.#candidateId = undefined
    })
  }

  /** Candidate IDs with a live key in this election (this candidate's included while it campaigns). */
  async candidates(options: AbortOptions = {}): Promise<ReadonlySet<string>> {
    throwIfAborted(options.signal)
    let values: Record<string, string>
    try {
      values = await this.#client().namespace(this.#prefix).getAll().prefix(`election/${this.name}/`).strings()
    } catch (err) {
      throw toIoError(err, `listing the candidates of etcd election ${this.name}`, options.signal)
    }
    const out = new Set(Object.values(values))
    if (this.#active && this.#candidateId !== undefined) out.add(this.#candidateId)
    return out
  }
}
