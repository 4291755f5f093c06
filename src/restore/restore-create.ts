import { addSnapshotUse } from './snapshot-use.js'
import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { collectionExists, createCollectionTx, MAX_INDEX_DEFINITIONS } from '../meta/catalog-collections.js'
import { expectObject, expectOptions, expectString, validateName } from '../meta/catalog-validate.js'
import { keys } from '../meta/keys.js'
import type { MetaTxn } from '../meta/transaction.js'
import { toSnapshotInfo } from '../snapshot/snapshot-record.js'
import type { SnapshotInfo } from '../snapshot/snapshot-types.js'
import type { RestoreSnapshotRequest } from './job-types.js'
import { taskCountOf, writeJob, type JobRecord } from './job-state.js'
import { readSnapshotView, requireCommittedTx, type SnapshotView } from './snapshot-reader.js'

/**
 * `restoreSnapshot`: synchronous validation, then one transaction that creates the
 * target collection in state `restoring`, pre-allocates the job and target IDs and
 * writes the job record with its guards (SPEC section 6). Bad input writes nothing.
 * @internal
 */

/** Throws `ALREADY_EXISTS` when `name` is the target of an unfinished restore (the catalog checks collections). */
async function requireNotRestoreTarget(tx: MetaTxn, name: string): Promise<void> {
  if ((await tx.get(keys.restoreTarget(name))) !== undefined) throw collectionExists(name)
}

function validateRequest(request: RestoreSnapshotRequest): void {
  expectObject(request, 'request')
  expectOptions(request, 'request')
  expectString(request.snapshotName, 'snapshotName')
  if (request.snapshotName === '') throw new SnapshotError('INVALID_ARGUMENT', '`snapshotName` must be a non-empty string')
  validateName(request.targetCollectionName, 'collection', 'targetCollectionName')
}

/**
 * Writes, in `tx`, the target collection (state `restoring`, same schema and field IDs,
 * shards, properties; new partition IDs; index definitions with the same IDs), the job
 * record (`pending`) and its guards. The job ID and the target segment IDs come from one
 * contiguous block: the job, then one target segment ID per snapshot segment, by ordinal.
 */
async function writeAccepted(ctx: ManagerContext, tx: MetaTxn, metadata: SnapshotView, info: SnapshotInfo, targetName: string): Promise<JobRecord> {
  const now = ctx.now()
  const { collection: source, indexes, segmentCount } = metadata
  if (indexes.length > MAX_INDEX_DEFINITIONS) {
    // Only a snapshot from elsewhere (an imported one) can hold more than a collection may.
    throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${info.name} has ${indexes.length} index definitions; a collection holds at most ${MAX_INDEX_DEFINITIONS}`)
  }
  await requireNotRestoreTarget(tx, targetName)
  const collection = await createCollectionTx(tx, {
    name: targetName,
    schema: source.schema,
    shardsNum: source.shardsNum,
    partitionNames: source.partitions.map((p) => p.name),
    properties: source.properties,
    indexes,
    state: 'restoring',
    createdAt: now,
  })
  const total = segmentCount
  const base = await tx.allocIds(1 + total)
  const jobId = base
  const collectionId = collection.id
  const partitions = collection.partitions
  const segmentsPerTask = ctx.options.maxSegmentsPerCopyTask
  const job: JobRecord = {
    jobId,
    snapshotId: info.id,
    snapshotName: info.name,
    sourceCollectionId: info.collectionId,
    targetCollectionName: targetName,
    collectionId,
    state: 'pending',
    reason: '',
    createdAt: now,
    totalSegments: total,
    totalBytes: info.sizeBytes,
    expectedRows: info.rowCount,
    segmentIdBase: total > 0 ? base + 1 : 0,
    segmentsPerTask,
    taskCount: taskCountOf({ segmentsPerTask, totalSegments: total }),
    copiedSegments: 0,
    copiedBytes: 0,
    completedTasks: 0,
    restoredRows: 0,
    partitionMap: source.partitions.map((p, i) => [p.id, partitions[i].id]),
    targetChannels: collection.channels,
    indexIds: indexes.map((ix) => ix.id),
  }
  writeJob(tx, job)
  tx.put(keys.restoreTarget(targetName), String(jobId))
  await addSnapshotUse(tx, info.id, jobId)
  return job
}

/**
 * Validates a restore request and accepts it: resolves the new job and the snapshot's
 * segment list (see {@link SnapshotView}). `NOT_FOUND` for an
 * unknown snapshot, `FAILED_PRECONDITION` for one that is not committed,
 * `INVALID_ARGUMENT` / `ALREADY_EXISTS` for a bad or taken target name.
 */
export async function acceptRestore(ctx: ManagerContext, request: RestoreSnapshotRequest): Promise<{ job: JobRecord; metadata: SnapshotView }> {
  validateRequest(request)
  const { signal, snapshotName, targetCollectionName } = request
  throwIfAborted(signal)
  let metadata: SnapshotView | undefined
  let metadataOf: string | undefined
  const job = await ctx.transactor.run(async (tx) => {
    // The record is read here, where the job that pins it needs the read; its list is read
    // once (a run after a conflict reads it again only if the record names another one).
    const record = await requireCommittedTx(tx, snapshotName)
    if (metadata === undefined || metadata.key !== record.list?.key || metadataOf !== record.list?.hash) {
      metadata = await readSnapshotView(ctx.objects, record, { signal })
      metadataOf = record.list?.hash
    }
    return writeAccepted(ctx, tx, metadata, toSnapshotInfo(record), targetCollectionName)
  }, { signal })
  return { job, metadata: metadata as SnapshotView }
}
