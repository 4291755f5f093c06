import { SnapshotError } from '../errors.js'
import { idFromKey, keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { ListReader } from './list-reader.js'
import type { Captured } from './segment-scan.js'
import type { SnapshotList } from './snapshot-list.js'
import type { SnapshotRecord } from './snapshot-record.js'

/**
 * Manifest reuse in snapshot creation: a segment unchanged since the collection's newest
 * committed snapshot lists that snapshot's manifest instead of writing its own. The
 * snapshot-set version read here is what the pin expects (the reuse invariant in
 * `snapshot-create.ts`).
 */

/** Committed snapshots looked at (newest ID first) for manifests to reuse. */
const REUSE_CANDIDATES = 4

/** The newest committed snapshot of the collection (among the last few by ID) and its list, for reuse. */
async function priorList(tx: MetaTxn, lists: ListReader, collectionId: number): Promise<SnapshotList | undefined> {
  const range = { ...prefixRange(keys.collectionSnapshotPrefix(collectionId)), reverse: true, limit: REUSE_CANDIDATES }
  const ids: number[] = []
  for await (const [key] of tx.iterate(range)) ids.push(idFromKey(key))
  let newest: SnapshotRecord | undefined
  for (const id of ids) {
    const r = await tx.getJson<SnapshotRecord>(keys.snapshot(id))
    if (r?.state === 'committed' && r.list !== undefined && (newest === undefined || r.createdAt > newest.createdAt)) newest = r
  }
  if (newest?.list === undefined) return undefined
  // A list that cannot be read (that snapshot dropped since its record was read, or damaged)
  // only means no reuse: this create writes every manifest itself.
  return lists.read(newest.list, { signal: tx.signal }).catch((err: unknown) => {
    if (SnapshotError.is(err, 'CORRUPT')) return undefined
    throw err
  })
}

/** The newest committed snapshot's list, for reuse, and the snapshot-set version it was read at. */
export interface Prior {
  setVersion: number
  list: SnapshotList | undefined
  /** Position in `list` of each of its segments. */
  at: Map<number, number>
}

/** The snapshot-set version the pin will expect, and the newest committed list to reuse from. */
export async function readPrior(reads: MetaTxn, lists: ListReader, collectionId: number): Promise<Prior> {
  const setVersion = Number((await reads.get(keys.snapshotSetVersion(collectionId))) ?? '0')
  const list = await priorList(reads, lists, collectionId)
  const at = new Map<number, number>()
  if (list !== undefined) for (let i = 0; i < list.count; i++) at.set(list.segmentIds[i], i)
  return { setVersion, list, at }
}

/** The owner of the manifest to list for `c`: the prior snapshot's when it holds the same manifest, else `self`. */
export function ownerOf(prior: Prior, c: Captured, self: number): number {
  const i = prior.at.get(c.segmentId)
  return prior.list !== undefined && i !== undefined && prior.list.hashes[i] === c.hash ? prior.list.owners[i] : self
}
