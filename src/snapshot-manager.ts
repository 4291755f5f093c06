import { randomUUID } from 'node:crypto'
import { leadershipSourceOf } from './cluster/leadership.js'
import { LocalLeadership } from './cluster/local-leadership.js'
import { LoopRunner, SWEEP_TICKS } from './cluster/loop-runner.js'
import { SnapshotError, throwIfAborted } from './errors.js'
import { TypedEmitter, type SnapshotManagerEvents } from './events.js'
import { MAX_TIMER_MS, resolveOptions, type ResolvedOptions, type SnapshotManagerOptions } from './options.js'
import type { ManagerContext } from './context.js'
import { Catalog } from './meta/catalog.js'
import { guardMetaStore } from './meta/guarded-meta-store.js'
import { checkLayoutVersion } from './meta/layout-version.js'
import type { MetaStore } from './meta/meta-store.js'
import { Transactor } from './meta/transaction.js'
import { guardObjectStore } from './storage/guarded-object-store.js'
import type { ObjectStore } from './storage/object-store.js'
import { SnapshotStore } from './snapshot/snapshot-store.js'
import type {
  CreateSnapshotRequest,
  DescribeSnapshotOptions,
  HoldSnapshotOptions,
  ListSnapshotsOptions,
  SnapshotDescription,
  SnapshotInfo,
  SpaceReport,
  SpaceReportOptions,
  VerifyReport,
} from './snapshot/snapshot-types.js'
import { RestoreService, isSnapshotInUse } from './restore/restore-service.js'
import type { ListRestoreJobsOptions, RestoreJobInfo, RestoreSnapshotRequest, WaitForRestoreOptions } from './restore/job-types.js'
import { GcService } from './gc/gc-loop.js'
import type { GcReport, ObjectExplanation, RunGcOptions } from './gc/gc-types.js'
import { explainKey, type ExplainSources } from './gc/explain.js'
import type { AbortOptions } from './types.js'
import { RepositoryService } from './repository/repository-service.js'
import type {
  ExportReport,
  ExportSnapshotOptions,
  ImportSnapshotRequest,
  PruneRepositoryOptions,
  RepositoryOptions,
  RepositorySnapshotInfo,
  VerifyRepositoryOptions,
} from './repository/repository-types.js'
import type { PruneReport } from './policy/retention.js'
import type { PruneSnapshotsOptions } from './snapshot/snapshot-prune.js'
import { ScheduleLoop } from './schedule/schedule-loop.js'
import { ScheduleStore, toScheduleInfo } from './schedule/schedule-store.js'
import type { PutScheduleRequest, ScheduleInfo, ScheduleRunResult } from './schedule/schedule-types.js'

/** Lifecycle of a {@link SnapshotManager}: `new` until `open()`, `open` once it resolved, `closed` after `close()` (it cannot be reopened). */
export type SnapshotManagerState = 'new' | 'opening' | 'open' | 'closing' | 'closed'

/**
 * The manager open on each MetaStore that has no election: a store whose batches are not
 * checked across processes (LevelDB, memory) given without a `leadership` option. Every
 * such manager runs recovery and the loops (`LocalLeadership` elects everyone), so a second
 * one on the same store object would purge the first one's creates in flight and work its
 * restore jobs twice. (With a `leadership`, one manager among them runs the loops, and
 * their transactions already serialize on the store object's lock.)
 */
const localOwners = new WeakMap<MetaStore, SnapshotManager>()

/**
 * The facade: point-in-time collection snapshots over an injected MetaStore and ObjectStore.
 *
 * @example
 * const manager = new SnapshotManager({
 *   meta: new LevelMetaStore({ location: './data/meta' }),
 *   objects: new FsObjectStore({ root: './data/objects' }),
 * })
 * await manager.open()
 * await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'nightly' })
 */
export class SnapshotManager extends TypedEmitter<SnapshotManagerEvents> {
  /** Options after defaults. */
  readonly options: ResolvedOptions
  /** The host database's metadata: collections, indexes, segments. */
  readonly catalog: Catalog
  readonly #meta: MetaStore
  readonly #objects: ObjectStore
  readonly #snapshots: SnapshotStore
  readonly #restore: RestoreService
  readonly #gc: GcService
  readonly #repository: RepositoryService
  readonly #schedules: ScheduleStore
  readonly #scheduleLoop: ScheduleLoop
  readonly #explain: (key: string, options: AbortOptions) => Promise<ObjectExplanation>
  readonly #loops: LoopRunner
  #state: SnapshotManagerState = 'new'
  #opening: Promise<void> | undefined
  #closing: Promise<void> | undefined
  /** True when a `leadership` option or the store elects one manager among several. */
  readonly #electedAmongOthers: boolean
  /** Public calls (and catalog transactions) under way. */
  readonly #inflight = new Set<Promise<unknown>>()

  /** Validates the options (see {@link SnapshotManagerOptions}); nothing is opened before `open()`. */
  constructor(options: SnapshotManagerOptions) {
    super()
    this.options = resolveOptions(options)
    this.#meta = guardMetaStore(options.meta)
    this.#objects = guardObjectStore(options.objects)
    const transactor = new Transactor(this.#meta)
    const now = this.options.now
    const instanceId = randomUUID()
    this.catalog = new Catalog({ transactor, now, isOpen: () => this.#state === 'open' || this.#state === 'opening', track: (work) => this.#track(work) })
    // The manager's own work (GC, restore, recovery) reads the catalog through a view gated
    // only on the stores being open: work that `close()` waits for (a call in flight, the
    // loops' current pass) finishes against open stores instead of failing NOT_OPEN.
    const internalCatalog = new Catalog({ transactor, now, isOpen: () => this.#state !== 'new' && this.#state !== 'closed', track: (work) => this.#track(work) })
    const ctx: ManagerContext = {
      meta: this.#meta,
      objects: this.#objects,
      transactor,
      catalog: internalCatalog,
      options: this.options,
      events: this,
      instanceId,
      now,
    }
    this.#snapshots = new SnapshotStore(ctx, { isInUse: isSnapshotInUse })
    this.#restore = new RestoreService(ctx)
    const gcSources: ExplainSources = {
      snapshots: (o) => this.#snapshots.mark(o),
      restoreKeys: (o) => this.#restore.liveKeys(o),
      snapshotsReferencing: (key, o) => this.#snapshots.snapshotsReferencing(key, o),
    }
    this.#gc = new GcService(ctx, gcSources)
    const snapshots = this.#snapshots
    this.#repository = new RepositoryService({
      ctx,
      rawObjects: options.objects,
      snapshots: {
        load: (name, o) => snapshots.load(name, o),
        hold: (name, o) => snapshots.hold(name, o),
        release: (name, tag, o) => snapshots.release(name, tag, o),
      },
    })
    this.#schedules = new ScheduleStore({ meta: this.#meta, transactor, now })
    const scheduleLoop = (this.#scheduleLoop = new ScheduleLoop({
      schedules: this.#schedules,
      events: this,
      now,
      create: (request, schedule) => this.#snapshots.create(request, schedule),
      prune: (o, only) => this.#snapshots.prune(o, only),
      find: (name) => this.#snapshots.describe(name).catch((err: unknown) => (SnapshotError.is(err, 'NOT_FOUND') ? undefined : Promise.reject(err))),
      intervalMs: this.options.scheduleIntervalMs,
    }))
    this.#explain = (key, o) => explainKey(ctx, gcSources, key, o)
    // One manager among all sharing the MetaStore runs recovery and the loops (src/cluster/).
    this.#electedAmongOthers = options.leadership !== undefined || leadershipSourceOf(options.meta) !== undefined
    this.#loops = new LoopRunner({
      leadership: options.leadership ?? leadershipSourceOf(options.meta)?.createLeadership('loops') ?? new LocalLeadership(),
      candidateId: instanceId,
      events: this,
      snapshots: this.#snapshots,
      restore: this.#restore,
      gc: this.#gc,
      schedules: scheduleLoop,
      sweepIntervalMs: Math.min(this.options.checkIntervalMs * SWEEP_TICKS, MAX_TIMER_MS),
    })
  }

  /** `open` once `open()` resolved and until `close()` is called. */
  get status(): SnapshotManagerState {
    return this.#state
  }

  /**
   * Opens both stores, checks the MetaStore layout version (`UNSUPPORTED_VERSION` for a
   * store written with another layout) and campaigns to run the background loops. The elected manager
   * (always, with a single-process store) runs recovery (removes `pending` snapshots of
   * dead managers, finishes `deleting` ones, resumes restore jobs and rollbacks) and then
   * starts the loops; when elected at once, `open()` resolves after that. Idempotent;
   * after `close()` it rejects with `NOT_OPEN`.
   */
  open(options: AbortOptions = {}): Promise<void> {
    if (this.#state === 'open') return Promise.resolve()
    if (this.#opening) return this.#opening
    if (this.#state !== 'new') return Promise.reject(new SnapshotError('NOT_OPEN', 'the manager is closed; create a new one'))
    const local = !this.#meta.capabilities.sharedConditionalBatch && !this.#electedAmongOthers
    const owner = local ? localOwners.get(this.#meta) : undefined
    if (owner !== undefined && owner !== this) {
      return Promise.reject(
        new SnapshotError(
          'FAILED_PRECONDITION',
          'another SnapshotManager is open on this MetaStore: a LevelDB or memory store takes one manager at a time (close the other first, or share it)',
        ),
      )
    }
    if (local) localOwners.set(this.#meta, this)
    this.#state = 'opening'
    this.#opening = (async () => {
      try {
        throwIfAborted(options.signal)
        await this.#meta.open(options)
        await checkLayoutVersion(this.#meta, options)
        await this.#loops.start(options)
        this.#state = 'open'
      } catch (err) {
        this.#state = 'closed'
        await this.#loops.stop().catch(() => undefined)
        await this.#meta.close().catch(() => undefined)
        this.#releaseStore()
        throw err
      } finally {
        this.#opening = undefined
      }
    })()
    return this.#opening
  }

  /**
   * Waits for the API calls under way (new ones reject `NOT_OPEN`), resigns as loop runner
   * (stopping the loops and waiting for their work), closes both stores. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing
    this.#closing = (async () => {
      if (this.#opening) await this.#opening.catch(() => undefined)
      if (this.#state === 'closed') return
      this.#state = 'closing'
      try {
        // Calls under way finish against open stores; new ones reject NOT_OPEN from here on.
        while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight])
        await this.#loops.stop()
      } finally {
        await this.#meta.close()
        await this.#objects.close?.()
        this.#releaseStore()
        this.#state = 'closed'
      }
    })()
    return this.#closing
  }

  /** Lets another manager open this manager's local MetaStore. */
  #releaseStore(): void {
    if (localOwners.get(this.#meta) === this) localOwners.delete(this.#meta)
  }

  #ensureOpen(): void {
    if (this.#state !== 'open') throw new SnapshotError('NOT_OPEN', this.#state === 'new' ? 'call open() first' : 'the manager is closed')
  }

  /** Keeps `work` (an API call under way) until it settles: `close()` waits for it before it closes the stores. */
  #track(work: Promise<unknown>): void {
    this.#inflight.add(work)
    void work.then(
      () => this.#inflight.delete(work),
      () => this.#inflight.delete(work),
    )
  }

  /**
   * Runs a public call: `NOT_OPEN` unless open, `ABORTED` if the signal fired. With `track`,
   * `close()` waits for the call to settle before it closes the stores (a call racing
   * `close()` either finishes first or rejects `NOT_OPEN`, never inside a closed store).
   */
  async #call<T>(signal: AbortSignal | undefined, fn: () => Promise<T>, track = true): Promise<T> {
    this.#ensureOpen()
    throwIfAborted(signal)
    const work = fn()
    if (track) this.#track(work)
    return work
  }

  // ── snapshots (SPEC section 5) ──────────────────────────────────────────────

  /** Captures the collection's flushed segments; metadata only, no data is copied. */
  createSnapshot(request: CreateSnapshotRequest): Promise<SnapshotInfo> {
    return this.#call(request?.signal, () => this.#snapshots.create(request))
  }

  /** Committed snapshots, ordered by `createdAt` then `id`. */
  listSnapshots(options: ListSnapshotsOptions = {}): Promise<SnapshotInfo[]> {
    return this.#call(options.signal, () => this.#snapshots.list(options))
  }

  /** One committed snapshot; `NOT_FOUND` when absent. */
  describeSnapshot(snapshotName: string, options: DescribeSnapshotOptions = {}): Promise<SnapshotDescription> {
    return this.#call(options.signal, () => this.#snapshots.describe(snapshotName, options))
  }

  /** Drops a snapshot; idempotent. `IN_USE` while an unfinished restore reads it. */
  dropSnapshot(snapshotName: string, options: AbortOptions = {}): Promise<void> {
    return this.#call(options.signal, () => this.#snapshots.drop(snapshotName, options))
  }

  /**
   * Holds a committed snapshot under `tag` (ZFS `hold`): it cannot be dropped (`IN_USE`
   * naming the tags) until every hold is released or expired. Holding again with the same
   * tag renews it; `ttlMs` makes it expire. Stored in the MetaStore, so every manager on
   * the store sees it. `NOT_FOUND` when there is no committed snapshot of the name.
   */
  holdSnapshot(snapshotName: string, options: HoldSnapshotOptions): Promise<void> {
    return this.#call(options?.signal, () => this.#snapshots.hold(snapshotName, options))
  }

  /** Releases hold `tag` of a snapshot; idempotent. */
  releaseSnapshot(snapshotName: string, tag: string, options: AbortOptions = {}): Promise<void> {
    return this.#call(options.signal, () => this.#snapshots.release(snapshotName, tag, options))
  }

  /** Checks existence, size and checksum of every object the snapshot references. */
  verifySnapshot(snapshotName: string, options: AbortOptions = {}): Promise<VerifyReport> {
    return this.#call(options.signal, () => this.#snapshots.verify(snapshotName, options))
  }

  // ── space (SPEC section 13) ─────────────────────────────────────────────────

  /**
   * Space used by segment and index files, ZFS-style, from metadata (nothing lists the
   * object store): per snapshot `referencedBytes`, `exclusiveBytes` (what dropping it alone
   * frees now) and `writtenBytes` (new since the collection's previous snapshot); per
   * collection `liveBytes` and `snapshotOnlyBytes` (what dropping all its snapshots frees).
   * With `collectionName`, that collection only (`NOT_FOUND` when neither a collection nor
   * a snapshot's collection has that name).
   */
  spaceReport(options: SpaceReportOptions = {}): Promise<SpaceReport> {
    return this.#call(options?.signal, () => this.#snapshots.spaceReport(options))
  }

  /**
   * What dropping exactly these committed snapshots would free, in bytes: files they
   * reference that no other snapshot, no live segment and no unfinished restore needs.
   * `NOT_FOUND` naming the first absent snapshot.
   */
  reclaimableBytes(snapshotNames: string[], options: AbortOptions = {}): Promise<number> {
    return this.#call(options.signal, () => this.#snapshots.reclaimableBytes(snapshotNames, options))
  }

  // ── retention and schedules (SPEC section 12) ──────────────────────────────

  /**
   * Applies a retention policy (restic `forget` semantics) to committed snapshots, per
   * collection: rules are OR'ed, calendar buckets are read in `policy.timeZone`,
   * `keepWithinMs` counts back from the newest snapshot, `minCount`/`maxCount` bound the
   * result. Held snapshots and those an unfinished restore reads are always kept. Each kept
   * snapshot lists every reason; drops go through `dropSnapshot` (one that fails is in
   * `failed`, the rest go on). `dryRun` drops nothing and reports the same figures.
   * `INVALID_ARGUMENT` for a policy without a `keep*` rule or with an unknown field.
   */
  pruneSnapshots(options: PruneSnapshotsOptions): Promise<PruneReport> {
    return this.#call(options?.signal, () => this.#snapshots.prune(options))
  }

  /**
   * Creates or replaces a schedule: a snapshot of `collectionName` every `everyMs` or at
   * each time of `cron`, named `{snapshotPrefix}-{UTC yyyyMMdd-HHmmss}`, then `retention`
   * over that schedule's own snapshots. Stored in the MetaStore; the elected loop runner
   * runs it (one process among many), within `scheduleIntervalMs` of each slot; after
   * downtime an overdue schedule runs once. `NOT_FOUND` when the collection does not exist.
   */
  putSchedule(request: PutScheduleRequest): Promise<ScheduleInfo> {
    return this.#call(request?.signal, () =>
      this.#schedules.put(request, (name, o) =>
        this.catalog.getCollection(name, o).then(
          () => true,
          (err: unknown) => (SnapshotError.is(err, 'NOT_FOUND') ? false : Promise.reject(err)),
        ),
      ),
    )
  }

  /** Every schedule, by name, with `lastRunAt`, `lastSnapshot`, `lastError` and `nextRunAt`. */
  listSchedules(options: AbortOptions = {}): Promise<ScheduleInfo[]> {
    return this.#call(options.signal, async () => {
      const now = this.options.now()
      return (await this.#schedules.list(options)).map((r) => toScheduleInfo(r, now))
    })
  }

  /**
   * Runs the schedules that are due now, in this process, whether or not it is the loop
   * runner (a tool, or a cron job driving a manager with `scheduleIntervalMs: 0`). Each
   * slot is claimed in a conditional batch first, so a slot the loop runner (or another
   * call) already ran is skipped. Resolves what each run did; failures are in `error`.
   */
  runDueSchedules(options: AbortOptions = {}): Promise<ScheduleRunResult[]> {
    return this.#call(options.signal, () => this.#scheduleLoop.runDue(options))
  }

  /** Deletes a schedule; idempotent. The snapshots it created stay (prune or drop them). */
  deleteSchedule(name: string, options: AbortOptions = {}): Promise<void> {
    return this.#call(options.signal, () => this.#schedules.delete(name, options))
  }

  // ── restore (SPEC section 6) ────────────────────────────────────────────────

  /** Validates, creates the target collection in state `restoring`, and returns the job ID. */
  restoreSnapshot(request: RestoreSnapshotRequest): Promise<number> {
    return this.#call(request?.signal, () => this.#restore.restore(request))
  }

  /** The job's current state; `NOT_FOUND` ("restore job not found") when unknown or expired. */
  getRestoreState(jobId: number, options: AbortOptions = {}): Promise<RestoreJobInfo> {
    return this.#call(options.signal, () => this.#restore.getState(jobId, options))
  }

  /** Jobs, optionally only those whose target collection has the given name. */
  listRestoreJobs(options: ListRestoreJobsOptions = {}): Promise<RestoreJobInfo[]> {
    return this.#call(options.signal, () => this.#restore.list(options))
  }

  /** Resolves when the job completes; rejects `RESTORE_FAILED` (with the reason) when it fails or is cancelled. */
  waitForRestore(jobId: number, options: WaitForRestoreOptions = {}): Promise<RestoreJobInfo> {
    // A wait is no I/O: close() ends it (the restore service rejects its waiters) instead of waiting for it.
    return this.#call(options.signal, () => this.#restore.wait(jobId, options), false)
  }

  /** Cancels an unfinished job; it rolls back. Cancelling a finished job is a no-op. */
  cancelRestore(jobId: number, options: AbortOptions = {}): Promise<void> {
    return this.#call(options.signal, () => this.#restore.cancel(jobId, options))
  }

  // ── garbage collection (SPEC section 7) ─────────────────────────────────────

  /**
   * Why GC keeps `key` or would delete it, from GC's own decision code run over that one
   * key (so the verdict and the next pass agree, all else unchanged): `live`, `snapshot`,
   * `restore`, `grace` (with `until`), `collectable` (a dropped segment's or build's file) or
   * `orphan`, with the segments, builds and snapshots behind it. An absent key is explained
   * as if it appeared now. `INVALID_ARGUMENT` for a key GC does not manage (outside `files/`
   * and `snapshots/` and unknown to the catalog). Read-only; any manager can answer.
   */
  explainObject(key: string, options: AbortOptions = {}): Promise<ObjectExplanation> {
    return this.#call(options.signal, () => this.#explain(key, options))
  }

  /** Runs one GC pass now. */
  runGc(options: RunGcOptions = {}): Promise<GcReport> {
    return this.#call(options.signal, () => this.#gc.run(options))
  }

  // ── repositories: backups in another store (SPEC section 14) ───────────────

  /**
   * Copies a committed snapshot into a repository (a prefix of any ObjectStore) so that it
   * outlives this store: only the files the repository lacks, streamed (server-side when
   * the repository is in this manager's own store), the entry written last. Holds the
   * snapshot meanwhile (it cannot be dropped: `IN_USE`). Calling it again after a crash or
   * an abort copies only what is missing. `NOT_FOUND` for an unknown snapshot.
   */
  exportSnapshot(snapshotName: string, options: ExportSnapshotOptions): Promise<ExportReport> {
    return this.#call(options?.signal, () => this.#repository.export(snapshotName, options))
  }

  /** The snapshots a repository holds, by `createdAt`. `NOT_FOUND` when the prefix holds no repository. */
  listRepositorySnapshots(options: RepositoryOptions): Promise<RepositorySnapshotInfo[]> {
    return this.#call(options?.signal, () => this.#repository.list(options))
  }

  /**
   * Registers a repository entry as a committed snapshot of this manager, with new local
   * IDs, after copying its files in and checking each one's size and SHA-256 (`CORRUPT`,
   * nothing registered, when one differs). Restore it as any other snapshot.
   */
  importSnapshot(request: ImportSnapshotRequest): Promise<SnapshotInfo> {
    return this.#call(request?.signal, () => this.#repository.import(request))
  }

  /** Checks every file of a repository: existence and size, and SHA-256 of a sample (`sample`) or of all (`all`). */
  verifyRepository(options: VerifyRepositoryOptions): Promise<VerifyReport> {
    return this.#call(options?.signal, () => this.#repository.verify(options))
  }

  /**
   * Applies a retention policy (SPEC section 12) to a repository's entries, per collection
   * name, then deletes the files no remaining entry references (and files no entry ever
   * referenced, older than `orphanGraceMs`). `dryRun` reports without deleting. Do not
   * run it while an export into the same repository is under way.
   */
  pruneRepository(options: PruneRepositoryOptions): Promise<PruneReport> {
    return this.#call(options?.signal, () => this.#repository.prune(options))
  }
}
