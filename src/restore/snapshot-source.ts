import { SnapshotError } from '../errors.js'
import type { MetaStore } from '../meta/meta-store.js'
import type { ObjectStore } from '../storage/object-store.js'
import { layout } from '../storage/layout.js'
import { decodeManifest } from '../format/manifest-codec.js'
import { toSnapshotSegment } from '../snapshot/manifest-reader.js'
import type { SnapshotSegment } from '../snapshot/snapshot-types.js'
import type { AbortOptions } from '../types.js'
import { forEachLimit } from '../util/for-each-limit.js'
import type { JobRecord, TaskRecord } from './job-state.js'
import { readCommitted, readSnapshotView, type SnapshotView } from './snapshot-reader.js'

/** Manifest reads in flight per task. */
const MANIFEST_READS = 8

/** The part of a task that says which manifests it reads. */
export type TaskSegments = Pick<TaskRecord, 'first' | 'count' | 'segmentIds' | 'owners'>

/**
 * What a running job needs of its snapshot: the source channels, and its segments by
 * task. Each task record carries the IDs and manifest owners of its own segments, so a
 * job keeps no per-segment state in memory however large the snapshot.
 * @internal
 */
export class JobSource {
  /** Name of the snapshot. */
  readonly snapshotName: string
  /** Channels of the source collection as the snapshot captured them, by shard. */
  readonly sourceChannels: readonly string[]
  readonly #objects: ObjectStore
  /** ID of the source collection (its manifests live under it). */
  readonly #collectionId: number

  constructor(objects: ObjectStore, metadata: Pick<SnapshotView, 'snapshot' | 'collection'>) {
    this.#objects = objects
    this.snapshotName = metadata.snapshot.name
    this.sourceChannels = [...(metadata.collection.channels ?? [])]
    this.#collectionId = metadata.collection.id
  }

  /** The task's segments, in order. `CORRUPT` when a manifest is missing, does not decode or is not the expected segment. */
  async segments(task: TaskSegments, options: AbortOptions = {}): Promise<SnapshotSegment[]> {
    const { segmentIds, owners, count } = task
    // A task record is ours, but it is read back from the store: check its shape before use.
    if (!Array.isArray(owners) || owners.length !== count || segmentIds.length !== count) {
      throw new SnapshotError('CORRUPT', `a task of ${count} segments lists ${Array.isArray(owners) ? owners.length : 'no'} manifest owners and ${segmentIds.length} segment IDs`)
    }
    const manifests = owners.map((owner, i) => layout.snapshotManifest(this.#collectionId, owner, segmentIds[i]))
    const out = new Array<SnapshotSegment>(count)
    await forEachLimit(manifests, MANIFEST_READS, async (key, i) => {
      const bytes = await this.#objects.get(key, options)
      if (bytes === undefined) throw new SnapshotError('CORRUPT', `snapshot ${this.snapshotName}: manifest ${key} is missing`, { details: { missing: [key] } })
      const seg = toSnapshotSegment(decodeManifest(bytes, key))
      if (seg.id !== segmentIds[i]) throw new SnapshotError('CORRUPT', `manifest ${key} describes segment ${seg.id}, expected ${segmentIds[i]}`)
      out[i] = seg
    }, options.signal)
    return out
  }
}

/**
 * The snapshots of the jobs this process works on. The metadata (whose segment list
 * stays in the object's bytes, see {@link SnapshotView}) is only held until the job's
 * tasks are written; after that a job keeps a small {@link JobSource}. A job's snapshot
 * cannot be dropped while the job is unfinished, so nothing here goes stale.
 * @internal
 */
export class SourceCache {
  readonly #meta: MetaStore
  readonly #objects: ObjectStore
  readonly #sources = new Map<number, Promise<JobSource>>()
  /** Metadata `restore()` read, kept for the checker to write the job's tasks from. */
  readonly #accepted = new Map<number, SnapshotView>()

  constructor(meta: MetaStore, objects: ObjectStore) {
    this.#meta = meta
    this.#objects = objects
  }

  /** Keeps what `restore()` read for a new job. */
  put(jobId: number, metadata: SnapshotView): void {
    this.#accepted.set(jobId, metadata)
    this.#sources.set(jobId, Promise.resolve(new JobSource(this.#objects, metadata)))
  }

  /** The job's source; reads the snapshot the first time. `CORRUPT` when it is not the one the job was created from. */
  get(job: JobRecord, options: AbortOptions = {}): Promise<JobSource> {
    let entry = this.#sources.get(job.jobId)
    if (entry === undefined) {
      entry = this.#load(job, options).then((m) => new JobSource(this.#objects, m))
      this.#sources.set(job.jobId, entry)
      entry.catch(() => this.#sources.delete(job.jobId))
    }
    return entry
  }

  /**
   * The job's metadata, for writing its tasks: what `restore()` read, or a fresh read
   * (not cached). Call {@link release} once the tasks are written.
   */
  async metadata(job: JobRecord, options: AbortOptions = {}): Promise<SnapshotView> {
    return this.#accepted.get(job.jobId) ?? this.#load(job, options)
  }

  /** Drops the metadata of a job whose tasks are written. */
  release(jobId: number): void {
    this.#accepted.delete(jobId)
  }

  async #load(job: JobRecord, options: AbortOptions): Promise<SnapshotView> {
    const head = await readCommitted(this.#meta, job.snapshotName, options)
    if (head.id !== job.snapshotId) {
      throw new SnapshotError('CORRUPT', `snapshot ${job.snapshotName} is no longer the one restore job ${job.jobId} reads (id ${head.id}, expected ${job.snapshotId})`)
    }
    return readSnapshotView(this.#objects, head, options)
  }

  /** Drops a job's entries (it finished). */
  forget(jobId: number): void {
    this.#sources.delete(jobId)
    this.#accepted.delete(jobId)
  }

  /** Drops every entry. */
  clear(): void {
    this.#sources.clear()
    this.#accepted.clear()
  }
}
