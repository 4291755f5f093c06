import { addSnapshotUse } from './snapshot-use.js'
import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { collectionExists, createCollectionTx } from '../meta/catalog-collections.js'
import { expectObject, expectOptions, expectString, validateName } from '../meta/catalog-validate.js'
import { keys } from '../meta/keys.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { LoadedSnapshot } from '../snapshot/snapshot-store.js'
import type { SnapshotInfo } from '../snapshot/snapshot-types.js'
import type { RestoreSnapshotRequest } from './job-types.js'
import { taskCountOf, writeJob, type JobRecord } from './job-state.js'
import type { SnapshotLoader } from './snapshot-source.js'

/**
 * `restoreSnapshot`: synchronous validation, then one transaction that creates the
 * target collection in state `restoring`, pre-allocates the job and target IDs and
 * writes the job record with its guards (SPEC section 6). Bad input writes nothing.
 * @internal
 */

/** What accepting a restore needs from the snapshot store. */
export interface RestoreSnapshots extends SnapshotLoader {
  /** The committed snapshot named `name`, read inside `tx`; `NOT_FOUND` / `FAILED_PRECONDITION` otherwise. */
  requireCommitted(tx: MetaTxn, name: string): Promise<SnapshotInfo>
}

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
async function writeAccepted(ctx: ManagerContext, tx: MetaTxn, loaded: LoadedSnapshot, info: SnapshotInfo, targetName: string): Promise<JobRecord> {
  const now = ctx.now()
  const { collection: source, indexes, segmentIds } = loaded.metadata
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
  const total = segmentIds.length
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
 * Validates a restore request and accepts it: resolves the new job and the loaded
 * snapshot. `NOT_FOUND` for an unknown snapshot, `FAILED_PRECONDITION` for one that is
 * not committed, `INVALID_ARGUMENT` / `ALREADY_EXISTS` for a bad or taken target name.
 */
export async function acceptRestore(
  ctx: ManagerContext,
  snapshots: RestoreSnapshots,
  request: RestoreSnapshotRequest,
): Promise<{ job: JobRecord; loaded: LoadedSnapshot }> {
  validateRequest(request)
  const { signal, snapshotName, targetCollectionName } = request
  throwIfAborted(signal)
  const loaded = await snapshots.load(snapshotName, { signal })
  throwIfAborted(signal)
  const job = await ctx.transactor.run(async (tx) => {
    const info = await snapshots.requireCommitted(tx, snapshotName)
    if (info.id !== loaded.info.id) {
      throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${snapshotName} was replaced while the restore started; retry`)
    }
    return writeAccepted(ctx, tx, loaded, info, targetCollectionName)
  }, { signal })
  return { job, loaded }
}
