import { keys } from '../meta/keys.js'
import type { MetaTxn } from '../meta/transaction.js'

/**
 * Which snapshots unfinished restore jobs read. Each job has a use key
 * (`keys.restoreSnapshotUse`), and each snapshot a count of them
 * (`keys.restoreSnapshotUses`). `dropSnapshot` point-reads the count: a point read is
 * validated when the transaction commits (a range read is not), so on a shared store
 * (etcd) a drop and a new restore of one snapshot in two processes cannot both commit.
 * @internal
 */

async function uses(tx: MetaTxn, snapshotId: number): Promise<number> {
  const raw = await tx.get(keys.restoreSnapshotUses(snapshotId))
  return raw === undefined ? 0 : Number(raw)
}

/** True while an unfinished restore job reads the snapshot. */
export async function isSnapshotInUse(tx: MetaTxn, snapshotId: number): Promise<boolean> {
  return (await uses(tx, snapshotId)) > 0
}

/** Records that job `jobId` reads the snapshot (in the transaction that creates the job). */
export async function addSnapshotUse(tx: MetaTxn, snapshotId: number, jobId: number): Promise<void> {
  const useKey = keys.restoreSnapshotUse(snapshotId, jobId)
  if ((await tx.get(useKey)) !== undefined) return
  tx.put(useKey, '')
  tx.put(keys.restoreSnapshotUses(snapshotId), String((await uses(tx, snapshotId)) + 1))
}

/** Releases the snapshot from job `jobId`; idempotent. */
export async function removeSnapshotUse(tx: MetaTxn, snapshotId: number, jobId: number): Promise<void> {
  const useKey = keys.restoreSnapshotUse(snapshotId, jobId)
  if ((await tx.get(useKey)) === undefined) return
  tx.del(useKey)
  const left = (await uses(tx, snapshotId)) - 1
  if (left > 0) tx.put(keys.restoreSnapshotUses(snapshotId), String(left))
  else tx.del(keys.restoreSnapshotUses(snapshotId))
}
