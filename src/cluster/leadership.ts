import type { AbortOptions } from '../types.js'

/**
 * Why a loop runner stopped being the leader:
 * - `resigned`: {@link LoopLeadership.resign} was called (the manager is closing).
 * - `lease-lost`: the backend reported that the session lease is gone (expired or revoked).
 * - `lease-expiring`: no keep-alive succeeded for most of the lease TTL, so the lease may
 *   expire on the server at any moment; the runner steps down before another can be elected.
 * - `error`: the leadership backend failed in another way.
 */
export type DemotionReason = 'resigned' | 'lease-lost' | 'lease-expiring' | 'error'

/** What a {@link LoopLeadership} calls as the candidate's role changes. */
export interface LeadershipHandlers {
  /**
   * The candidate became the leader: start the background loops. Awaited; while it runs
   * no other handler is called. When it rejects during {@link LoopLeadership.campaign},
   * `campaign` rejects; later, the error goes to `error` and the candidate steps down
   * and campaigns again after a pause, so that another candidate can take over.
   *
   * `signal` fires as soon as the leadership is lost (before `demoted` is called), so that
   * work started here (recovery) stops early.
   */
  elected(signal: AbortSignal): void | Promise<void>
  /**
   * The candidate stopped being the leader: stop the loops and wait for their in-flight
   * work. Called at most once per `elected`, and awaited before the candidate campaigns
   * again or `resign` resolves.
   */
  demoted(reason: DemotionReason): void | Promise<void>
  /** A failure outside the caller's control (a lost lease, a rejected `elected`). Never thrown. */
  error?(error: Error): void
}

/** Options of {@link LoopLeadership.campaign}. */
export interface CampaignOptions extends AbortOptions {
  /**
   * Identifies the candidate among all processes (the manager passes its instance ID).
   * Work a manager has in flight (a `pending` snapshot) is recorded with this ID, and
   * recovery leaves it alone while {@link LoopLeadership.candidates} lists the ID.
   */
  candidateId: string
}

/**
 * The port that picks the one manager running the background loops (restore
 * checker/inspector, GC, recovery) among all managers that share one MetaStore.
 *
 * Adapters: {@link LocalLeadership} (the default; elected at once: one process owns a
 * LevelDB or memory store) and `EtcdLeadership` (`vecsnap/etcd`; a lease-based etcd
 * election, obtained with `EtcdMetaStore#createLeadership`).
 *
 * Rules every adapter follows:
 * - `campaign` registers the candidate and resolves once the registration is visible to
 *   {@link candidates}; when the candidate is elected at once, it resolves only after
 *   `elected()` resolved (so `open()` finishes recovery first, as on a single machine).
 * - `elected` and `demoted` alternate, starting with `elected`; they never overlap.
 * - After losing leadership for any reason but `resign`, the candidate campaigns again.
 * - `resign` stops campaigning, calls `demoted('resigned')` if the candidate leads, and
 *   resolves after it did. Idempotent. A resigned leadership may campaign again.
 */
export interface LoopLeadership {
  /** Starts campaigning (see the rules above). Rejects when the registration fails. */
  campaign(handlers: LeadershipHandlers, options: CampaignOptions): Promise<void>
  /** Stops campaigning and steps down. Idempotent. */
  resign(): Promise<void>
  /**
   * IDs of the candidates whose session is alive now, this one included. Recovery uses it
   * to leave alone the in-flight work of live managers. Adapters that cannot tell omit it;
   * then only the caller's own work counts as in flight.
   */
  candidates?(options?: AbortOptions): Promise<ReadonlySet<string>>
}

/** Options of a MetaStore's `createLeadership`. */
export interface CreateLeadershipOptions {
  /**
   * Lifetime of the session lease in seconds: how long after a leader dies (or loses its
   * connection) another candidate takes over.
   * @default 10
   */
  ttlSeconds?: number
}

/**
 * A store that can elect one process among those sharing it (`EtcdMetaStore`). The
 * MetaStore port knows nothing of leadership: `SnapshotManager` detects this interface
 * on the MetaStore it is given and, when present and no
 * `leadership` option is given, calls `createLeadership('loops')`.
 */
export interface LeadershipSource {
  /** A leadership named `name` over the store's backend (one election per name and prefix). */
  createLeadership(name: string, options?: CreateLeadershipOptions): LoopLeadership
}

/** `value` as a {@link LeadershipSource}, or undefined when it is not one. */
export function leadershipSourceOf(value: unknown): LeadershipSource | undefined {
  const fn = typeof value === 'object' && value !== null ? (value as { createLeadership?: unknown }).createLeadership : undefined
  return typeof fn === 'function' ? (value as LeadershipSource) : undefined
}
