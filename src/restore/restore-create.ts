import { addSnapshotUse } from './snapshot-use.js'
import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { collectionExists, createCollectionTx } from '../meta/catalog-collections.js'
import { expectObject, expectOptions, expectString, validateName } from '../meta/catalog-validate.js'
import { keys } from '../meta/keys.js'
import type { MetaTxn } from '../meta/transaction.js'
import { toSnapshotInfo, type SnapshotRecord } from '../snapshot/snapshot-record.js'
import type { SnapshotInfo } from '../snapshot/snapshot-types.js'
import type { RestoreSnapshotRequest } from './job-types.js'
import { taskCountOf, writeJob, type JobRecord } from './job-state.js'
import { readMetadataView, requireCommittedTx, type MetadataView } from './snapshot-reader.js'

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
async function writeAccepted(ctx: ManagerContext, tx: MetaTxn, metadata: MetadataView, info: SnapshotInfo, targetName: string): Promise<JobRecord> {
  const now = ctx.now()
  const { collection: source, indexes, segmentCount } = metadata
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
 * metadata (its segment list still unparsed, see {@link MetadataView}). `NOT_FOUND` for an
 * unknown snapshot, `FAILED_PRECONDITION` for one that is not committed,
 * `INVALID_ARGUMENT` / `ALREADY_EXISTS` for a bad or taken target name.
 */
export async function acceptRestore(ctx: ManagerContext, request: RestoreSnapshotRequest): Promise<{ job: JobRecord; metadata: MetadataView }> {
  validateRequest(request)
  const { signal, snapshotName, targetCollectionName } = request
  throwIfAborted(signal)
  let metadata: MetadataView | undefined
  const job = await ctx.transactor.run(async (tx) => {
    // The snapshot record lists every segment, so it is read once, here, where the job
    // that pins it needs the read; the metadata it names is read in the transaction too.
    const head = await requireCommittedTx(tx, snapshotName)
    if (metadata?.key !== head.metadataKey) metadata = await readMetadataView(ctx.objects, head, { signal })
    return writeAccepted(ctx, tx, metadata, toSnapshotInfo(head as SnapshotRecord), targetCollectionName)
  }, { signal })
  return { job, metadata: metadata as MetadataView }
}
