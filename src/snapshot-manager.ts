import { randomUUID } from 'node:crypto'
import { leadershipSourceOf } from './cluster/leadership.js'
import { LocalLeadership } from './cluster/local-leadership.js'
import { LoopRunner, SWEEP_TICKS } from './cluster/loop-runner.js'
import { SnapshotError } from './errors.js'
import { TypedEmitter, type SnapshotManagerEvents } from './events.js'
import { MAX_TIMER_MS, resolveOptions, type ResolvedOptions, type SnapshotManagerOptions } from './options.js'
import type { ManagerContext } from './context.js'
import { ManagerLifecycle, type SnapshotManagerState } from './manager-lifecycle.js'
import { Catalog } from './meta/catalog.js'
import { guardMetaStore } from './meta/guarded-meta-store.js'
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

export type { SnapshotManagerState } from './manager-lifecycle.js'

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
  readonly #lifecycle: ManagerLifecycle

  /** Validates the options (see {@link SnapshotManagerOptions}); nothing is opened before `open()`. */
  constructor(options: SnapshotManagerOptions) {
    super()
    this.options = resolveOptions(options)
    this.#meta = guardMetaStore(options.meta)
    this.#objects = guardObjectStore(options.objects)
    const transactor = new Transactor(this.#meta)
    const now = this.options.now
    const instanceId = randomUUID()
    this.catalog = new Catalog({ transactor, now, isOpen: () => this.status === 'open' || this.status === 'opening', track: (work) => this.#lifecycle.track(work) })
    // The manager's own work (GC, restore, recovery) reads the catalog through a view gated
    // only on the stores being open: work that `close()` waits for (a call in flight, the
    // loops' current pass) finishes against open stores instead of failing NOT_OPEN.
    const internalCatalog = new Catalog({ transactor, now, isOpen: () => this.status !== 'new' && this.status !== 'closed', track: (work) => this.#lifecycle.track(work) })
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
    const electedAmongOthers = options.leadership !== undefined || leadershipSourceOf(options.meta) !== undefined
    const loops = new LoopRunner({
      leadership: options.leadership ?? leadershipSourceOf(options.meta)?.createLeadership('loops') ?? new LocalLeadership(),
      candidateId: instanceId,
      events: this,
      snapshots: this.#snapshots,
      restore: this.#restore,
      gc: this.#gc,
      schedules: scheduleLoop,
      sweepIntervalMs: Math.min(this.options.checkIntervalMs * SWEEP_TICKS, MAX_TIMER_MS),
    })
    this.#lifecycle = new ManagerLifecycle({ meta: this.#meta, objects: this.#objects, loops, electedAmongOthers })
  }

  /** `open` once `open()` resolved and until `close()` is called. */
  get status(): SnapshotManagerState {
    return this.#lifecycle.state
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
    return this.#lifecycle.open(options)
  }

  /**
   * Waits for the API calls under way (new ones reject `NOT_OPEN`), resigns as loop runner
   * (stopping the loops and waiting for their work), closes both stores. Idempotent.
   */
  close(): Promise<void> {
    return this.#lifecycle.close()
  }

  /** Runs a public call through the lifecycle (see {@link ManagerLifecycle.call}). */
  #call<T>(signal: AbortSignal | undefined, fn: () => Promise<T>, track = true): Promise<T> {
    return this.#lifecycle.call(signal, fn, track)
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
