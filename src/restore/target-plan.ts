import { SnapshotError } from '../errors.js'
import type { FieldBinlog, FieldIndexFiles, SegmentFile, SegmentIndexInfo, SegmentInfo } from '../catalog-types.js'
import { baseName, layout } from '../storage/layout.js'
import type { SnapshotSegment } from '../snapshot/snapshot-types.js'
import type { JobRecord } from './job-state.js'

/**
 * Where every file of a snapshot segment goes in the target collection. Pure and
 * deterministic: the same job, task and manifests always give the same keys, so a
 * resumed task, the rollback and `liveKeys` all agree on what a job writes.
 *
 * Keys are built by `layout` from target IDs: logs keep their source `logId` (files
 * without one get an ID from the task's allocated block); index, text and JSON-key
 * index files keep their file name under a new target build ID, version 1.
 * @internal
 */

/** Index version of every file a restore writes. */
export const TARGET_INDEX_VERSION = 1

/** One object copy. */
export interface FileCopy {
  /** Source key (as the snapshot recorded it). */
  from: string
  /** Target key, built by `layout` from target IDs. */
  to: string
  /** Size in bytes as the snapshot recorded it; the copy must match it. */
  size: number
}

/** A segment of a task with its target record and copies. */
export interface PlannedSegment {
  /** Index of the segment in the snapshot's segment list. */
  ordinal: number
  sourceId: number
  /** The target segment as it is registered (state `flushed`). */
  target: SegmentInfo
  copies: FileCopy[]
  /** Summed size of the segment's files. */
  bytes: number
}

/** What {@link planTask} needs besides the segments. */
export interface PlanContext {
  job: Pick<JobRecord, 'jobId' | 'collectionId' | 'segmentIdBase' | 'partitionMap' | 'targetChannels'>
  /** Channels of the source collection as the snapshot captured them, by shard. */
  sourceChannels: readonly string[]
  /** Ordinal of `segments[0]`. */
  first: number
  /** The task's allocated ID block (see `TaskRecord.idBase`). */
  idBase: number
  /** How many of the block's IDs are build IDs (the rest are log IDs). */
  buildCount: number
  /** `createdAt` of the target segments. */
  now: number
}

/** IDs a task must allocate before it copies: one build ID per source build, one log ID per log file without one. */
export function countTaskIds(segments: readonly SnapshotSegment[]): { buildCount: number; logIdCount: number } {
  const builds = new Set<number>()
  let logIdCount = 0
  for (const seg of segments) {
    for (const lists of [seg.binlogs, seg.statslogs, seg.deltalogs, seg.bm25logs]) {
      for (const fb of lists ?? []) for (const f of fb.files) if (f.logId === undefined || f.logId === null) logIdCount++
    }
    for (const lists of [seg.indexes, seg.textIndexes, seg.jsonKeyIndexes]) for (const b of lists ?? []) builds.add(b.buildId)
  }
  return { buildCount: builds.size, logIdCount }
}

/** Hands out target build and log IDs from a task's block, in order of first use. */
class TaskIds {
  readonly #builds = new Map<number, number>()
  readonly #base: number
  readonly #buildCount: number
  #logs = 0

  constructor(base: number, buildCount: number) {
    this.#base = base
    this.#buildCount = buildCount
  }

  build(source: number): number {
    let target = this.#builds.get(source)
    if (target === undefined) {
      if (this.#builds.size >= this.#buildCount) throw new SnapshotError('CORRUPT', 'a manifest changed after its task allocated IDs (more builds than counted)')
      target = this.#base + this.#builds.size
      this.#builds.set(source, target)
    }
    return target
  }

  log(): number {
    return this.#base + this.#buildCount + this.#logs++
  }
}

type LogKind = 'insertLog' | 'statsLog' | 'deltaLog' | 'bm25Log'

/** Target segments and copies of a task's segments. `CORRUPT` when a segment cannot be mapped. */
export function planTask(ctx: PlanContext, segments: readonly SnapshotSegment[]): PlannedSegment[] {
  const { job } = ctx
  const partitions = new Map(job.partitionMap)
  const ids = new TaskIds(ctx.idBase, ctx.buildCount)
  return segments.map((seg, i) => {
    const ordinal = ctx.first + i
    const segmentId = job.segmentIdBase + ordinal
    const partitionId = partitions.get(seg.partitionId)
    if (partitionId === undefined) {
      throw new SnapshotError('CORRUPT', `segment ${seg.id} belongs to partition ${seg.partitionId}, which the snapshot does not list`)
    }
    const shard = ctx.sourceChannels.indexOf(seg.channel)
    const channels = job.targetChannels
    const channel = channels.length === 0 ? seg.channel : channels[shard >= 0 && shard < channels.length ? shard : ordinal % channels.length]
    const copies: FileCopy[] = []
    let bytes = 0
    const copy = (file: SegmentFile, to: string, logId?: number): SegmentFile => {
      copies.push({ from: file.key, to, size: file.size })
      bytes += file.size
      const out: SegmentFile = { ...file, key: to }
      if (logId !== undefined) out.logId = logId
      return out
    }
    const logs = (lists: readonly FieldBinlog[] | undefined, kind: LogKind): FieldBinlog[] =>
      (lists ?? []).map((fb) => ({
        fieldId: fb.fieldId,
        files: fb.files.map((file) => {
          const logId = file.logId === undefined || file.logId === null ? ids.log() : file.logId
          return copy(file, layout[kind]({ collectionId: job.collectionId, partitionId, segmentId, fieldId: fb.fieldId, logId }), logId)
        }),
      }))
    const binlogs = logs(seg.binlogs, 'insertLog')
    const statslogs = logs(seg.statslogs, 'statsLog')
    const deltalogs = logs(seg.deltalogs, 'deltaLog')
    const bm25logs = logs(seg.bm25logs, 'bm25Log')
    const indexes: SegmentIndexInfo[] = (seg.indexes ?? []).map((ix) => {
      const buildId = ids.build(ix.buildId)
      const files = ix.files.map((file) =>
        copy(file, layout.indexFile({ buildId, version: TARGET_INDEX_VERSION, partitionId, segmentId, fileName: baseName(file.key) })),
      )
      return { indexId: ix.indexId, buildId, files }
    })
    const fieldIndexes = (lists: readonly FieldIndexFiles[] | undefined, kind: 'textIndex' | 'jsonKeyIndex'): FieldIndexFiles[] =>
      (lists ?? []).map((t) => {
        const buildId = ids.build(t.buildId)
        const files = t.files.map((file) =>
          copy(file, layout[kind]({ buildId, version: TARGET_INDEX_VERSION, collectionId: job.collectionId, partitionId, segmentId, fieldId: t.fieldId, fileName: baseName(file.key) })),
        )
        return { fieldId: t.fieldId, buildId, files }
      })
    const textIndexes = fieldIndexes(seg.textIndexes, 'textIndex')
    const jsonKeyIndexes = fieldIndexes(seg.jsonKeyIndexes, 'jsonKeyIndex')
    const seen = new Set<string>()
    for (const c of copies) {
      if (seen.has(c.to)) throw new SnapshotError('CORRUPT', `two files of segment ${seg.id} map to the same target key ${c.to}`)
      seen.add(c.to)
    }
    const target: SegmentInfo = {
      id: segmentId,
      collectionId: job.collectionId,
      partitionId,
      channel,
      state: 'flushed',
      level: seg.level,
      numRows: seg.numRows,
      binlogs,
      statslogs,
      deltalogs,
      bm25logs,
      indexes,
      textIndexes,
      jsonKeyIndexes,
      createdAt: ctx.now,
    }
    return { ordinal, sourceId: seg.id, target, copies, bytes }
  })
}
