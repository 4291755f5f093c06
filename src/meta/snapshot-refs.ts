import { throwIfAborted } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { keys } from './keys.js'
import { prefixRange, type MetaStore } from './meta-store.js'
import type { MetaTxn } from './transaction.js'

/**
 * The reference index: which snapshots pin which segments and index builds, for GC and
 * drop. One key per pinned segment and snapshot (`keys.segmentRef`), whose value lists
 * the builds of that segment the snapshot captured (index, text-index and JSON-key-index
 * builds; decimal IDs joined by commas, '' for none). One key per segment instead of one
 * more per build halves the index writes of a create and the deletes of a drop.
 *
 * Snapshots recorded before this format (records without `refIndex: 2`) have empty
 * values and a `keys.buildRef` key per build instead. Every reader here reads both, so
 * such snapshots keep pinning their builds; drop removes whichever keys the record has.
 * @internal
 */

/** `SnapshotRecord.refIndex` of records whose builds are listed in their segment references. */
export const REF_INDEX_FORMAT = 2

/** The value of a segment reference. */
export function segmentRefValue(buildIds: readonly number[]): string {
  return buildIds.join(',')
}

function refBuilds(value: string): number[] {
  return value === '' ? [] : value.split(',').map(Number)
}

/** Segment and build IDs pinned by snapshots in any state. */
export interface PinnedIds {
  segmentIds: Set<number>
  buildIds: Set<number>
}

/** Reads the whole reference index. */
export async function readPins(meta: MetaStore, options: AbortOptions = {}): Promise<PinnedIds> {
  const { signal } = options
  throwIfAborted(signal)
  const segmentIds = new Set<number>()
  const buildIds = new Set<number>()
  const idAfter = (key: string, prefix: string): number => Number(key.slice(prefix.length, key.indexOf('/', prefix.length)))
  for await (const [key, value] of meta.iterate(prefixRange(keys.segmentRefAllPrefix), { signal })) {
    segmentIds.add(idAfter(key, keys.segmentRefAllPrefix))
    for (const b of refBuilds(value)) buildIds.add(b)
  }
  for await (const [key] of meta.iterate(prefixRange(keys.buildRefAllPrefix), { signal })) buildIds.add(idAfter(key, keys.buildRefAllPrefix))
  return { segmentIds, buildIds }
}

/** Inside `tx`: whether any snapshot pins one of `buildIds`, which are builds of segment `segmentId`. */
export async function pinsAnyBuild(tx: MetaTxn, segmentId: number, buildIds: readonly number[]): Promise<boolean> {
  if (buildIds.length === 0) return false
  const wanted = new Set(buildIds)
  for await (const [, value] of tx.iterate(prefixRange(keys.segmentRefPrefix(segmentId)))) {
    if (refBuilds(value).some((b) => wanted.has(b))) return true
  }
  for (const b of buildIds) if (await tx.hasPrefix(keys.buildRefPrefix(b))) return true
  return false
}
