import { SnapshotError } from '../errors.js'
import { keys } from '../meta/keys.js'
import { prefixRange, type MetaStore } from '../meta/meta-store.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { AbortOptions } from '../types.js'
import type { SnapshotHold } from './snapshot-types.js'

/**
 * Holds on snapshots (SPEC section 12; ZFS `zfs hold`, Milvus pins with a TTL): tags that
 * keep a snapshot from being dropped or pruned while something outside uses it. A
 * snapshot's holds are one small MetaStore value, `s/holds/{snapshotId}` (a JSON array), so
 * `dropSnapshot` reads them in its own transaction (a point read: on etcd a compare) and a
 * hold and a drop never both win. An expired hold holds nothing; it is dropped from the
 * value the next time the value is written.
 * @internal
 */

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,127}$/

/** A stored hold. */
interface StoredHold {
  tag: string
  expiresAt?: number
}

/** Throws unless `tag` is a valid hold tag: 1–128 of `[A-Za-z0-9_.:@-]`, starting with a letter, digit or `_`. */
export function validateHoldTag(tag: unknown): asserts tag is string {
  if (typeof tag !== 'string') throw new TypeError(`Expected \`tag\` to be a string, got \`${tag === null ? 'null' : typeof tag}\``)
  if (!TAG_RE.test(tag)) {
    throw new SnapshotError('INVALID_ARGUMENT', `invalid hold tag ${JSON.stringify(tag.slice(0, 64))}: use 1–128 characters of letters, digits, '_', '.', ':', '@' and '-', starting with a letter, digit or '_'`)
  }
}

function parse(raw: string | undefined): StoredHold[] {
  return raw === undefined ? [] : (JSON.parse(raw) as StoredHold[])
}

/** The holds in force at `now`, by tag. */
export function activeHolds(raw: string | undefined, now: number): SnapshotHold[] {
  return parse(raw)
    .filter((h) => h.expiresAt === undefined || h.expiresAt > now)
    .sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0))
    .map((h) => (h.expiresAt === undefined ? { tag: h.tag } : { tag: h.tag, expiresAt: h.expiresAt }))
}

/** The holds of snapshot `id` in force at `now`, read in `tx` (so a commit checks them). */
export async function readHoldsTx(tx: MetaTxn, id: number, now: number): Promise<SnapshotHold[]> {
  return activeHolds(await tx.get(keys.snapshotHolds(id)), now)
}

/** The holds in force at `now` of every snapshot that has any, by snapshot ID (one range read). */
export async function readAllHolds(meta: MetaStore, now: number, options: AbortOptions = {}): Promise<Map<number, SnapshotHold[]>> {
  const out = new Map<number, SnapshotHold[]>()
  for await (const [key, value] of meta.iterate(prefixRange(keys.snapshotHoldsPrefix), options)) {
    const holds = activeHolds(value, now)
    if (holds.length > 0) out.set(Number(key.slice(keys.snapshotHoldsPrefix.length)), holds)
  }
  return out
}

/** Holds in force on one snapshot at most (keeps its value small: ≤ 64 × ~150 bytes). */
export const MAX_HOLDS = 64

/**
 * Sets (or renews) hold `tag` on snapshot `id` in `tx`, expiring at `expiresAt` (never when
 * undefined). `FAILED_PRECONDITION` when {@link MAX_HOLDS} other holds are in force.
 */
export async function putHoldTx(tx: MetaTxn, id: number, tag: string, expiresAt: number | undefined, now: number): Promise<void> {
  const holds: StoredHold[] = activeHolds(await tx.get(keys.snapshotHolds(id)), now).filter((h) => h.tag !== tag)
  if (holds.length >= MAX_HOLDS) {
    throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${id} has ${holds.length} holds in force, the most allowed; release one first`)
  }
  holds.push(expiresAt === undefined ? { tag } : { tag, expiresAt })
  tx.putJson(keys.snapshotHolds(id), holds)
}

/** Removes hold `tag` of snapshot `id` in `tx` (and every expired one); resolves whether it was in force. */
export async function removeHoldTx(tx: MetaTxn, id: number, tag: string, now: number): Promise<boolean> {
  const raw = await tx.get(keys.snapshotHolds(id))
  if (raw === undefined) return false
  const before = activeHolds(raw, now)
  const after = before.filter((h) => h.tag !== tag)
  if (after.length === 0) tx.del(keys.snapshotHolds(id))
  else tx.putJson(keys.snapshotHolds(id), after)
  return after.length < before.length
}
