import { SnapshotError, throwIfAborted } from '../errors.js'
import { expectString } from '../meta/catalog-validate.js'
import { idFromKey, keys } from '../meta/keys.js'
import { prefixRange, type MetaStore } from '../meta/meta-store.js'
import { applyRetention, validateRetentionPolicy, type PruneReport, type RetentionItem, type RetentionPolicy } from '../policy/retention.js'
import type { AbortOptions } from '../types.js'
import type { SnapshotInfo } from './snapshot-types.js'

/** Options of `SnapshotManager.pruneSnapshots`. */
export interface PruneSnapshotsOptions extends AbortOptions {
  /** Prune only this collection's snapshots (by the name they recorded); default: every collection, each on its own. */
  collectionName?: string
  /** Which snapshots to keep (at least one `keep*` rule). */
  policy: RetentionPolicy
  /** Report what would be dropped and freed, change nothing. @default false */
  dryRun?: boolean
}

/** What a prune needs of the snapshot store. @internal */
export interface PruneDeps {
  meta: MetaStore
  /** Committed snapshots with their holds. */
  list(options: AbortOptions & { collectionName?: string }): Promise<SnapshotInfo[]>
  /** One accounting of the store: what each snapshot frees alone, and what a subset frees together. */
  dropFigures(names: readonly string[], options: AbortOptions): Promise<{ each: Map<string, number>; freed(subset: readonly string[]): number }>
  /** Drops a snapshot; resolves `true` only for the call that took it from committed to deleting. */
  drop(name: string, options: AbortOptions): Promise<boolean>
}

const OPTION_FIELDS = new Set(['collectionName', 'policy', 'dryRun', 'signal'])

/** Restore jobs reading each snapshot, by snapshot ID (one range read). */
async function restoreReaders(meta: MetaStore, options: AbortOptions): Promise<Map<number, number[]>> {
  const out = new Map<number, number[]>()
  for await (const [key] of meta.iterate(prefixRange(keys.restoreSnapshotUseAllPrefix), options)) {
    const snapshotId = Number(key.slice(keys.restoreSnapshotUseAllPrefix.length).split('/')[0])
    let jobs = out.get(snapshotId)
    if (jobs === undefined) out.set(snapshotId, (jobs = []))
    jobs.push(idFromKey(key))
  }
  return out
}

/**
 * Applies a retention policy (SPEC section 12) to committed snapshots, per collection, and
 * drops what it does not keep through the normal drop path, one at a time: a drop that
 * fails (a hold or a restore that arrived meanwhile: `IN_USE`) is reported in `failed` and
 * the others go on. Held snapshots and those an unfinished restore reads are always kept.
 * `only` narrows the snapshots considered (a schedule prunes its own).
 *
 * The figures come from one space accounting taken before any drop, so a dry run reports
 * exactly what the real run frees when nothing else changes in between. Of concurrent
 * prunes, each reports only the drops it made (see `dropSnapshot`), with figures from its
 * own accounting: together they may report less than was freed, never a drop twice.
 * @internal
 */
export async function pruneSnapshots(deps: PruneDeps, options: PruneSnapshotsOptions, only?: (s: SnapshotInfo) => boolean): Promise<PruneReport> {
  if (typeof options !== 'object' || options === null) throw new TypeError('Expected `options` to be an object with a `policy`')
  for (const field of Object.keys(options)) {
    // A typo (`dryrun`) must not turn a dry run into a real one.
    if (!OPTION_FIELDS.has(field)) throw new SnapshotError('INVALID_ARGUMENT', `unknown prune option \`${field}\` (known: ${[...OPTION_FIELDS].join(', ')})`)
  }
  const { collectionName, policy, dryRun = false, signal } = options
  if (collectionName !== undefined) expectString(collectionName, 'collectionName')
  if (typeof dryRun !== 'boolean') throw new TypeError(`Expected \`dryRun\` to be a boolean, got \`${typeof dryRun}\``)
  validateRetentionPolicy(policy)
  throwIfAborted(signal)
  const readers = await restoreReaders(deps.meta, { signal })
  const snapshots = (await deps.list({ collectionName, signal })).filter((s) => only === undefined || only(s))
  const items = snapshots.map((s): RetentionItem => {
    const keepReasons = s.holds.map((h) => `held: ${h.tag}`)
    for (const job of readers.get(s.id) ?? []) keepReasons.push(`restore job ${job} reads it`)
    return { name: s.name, createdAt: s.createdAt, group: s.collectionName, keepReasons }
  })
  const decision = applyRetention(items, policy)
  const collectionOf = new Map(snapshots.map((s) => [s.name, s.collectionName]))
  const figures = await deps.dropFigures(decision.dropped, { signal })
  const report: PruneReport = {
    dryRun,
    kept: decision.kept.map((k) => ({ name: k.name, collectionName: collectionOf.get(k.name)!, reasons: k.reasons })),
    dropped: [],
    failed: [],
    reclaimedBytes: 0,
  }
  const done: string[] = []
  for (const name of decision.dropped) {
    // Gone since the listing (another prune, a drop): not this prune's to report.
    if (!figures.each.has(name)) continue
    if (!dryRun) {
      throwIfAborted(signal)
      try {
        // Dropped meanwhile by someone else (another prune, a drop): theirs to report.
        if (!(await deps.drop(name, { signal }))) continue
      } catch (err) {
        if (SnapshotError.is(err) && err.code === 'ABORTED') throw err
        report.failed.push({ name, code: SnapshotError.is(err) ? err.code : 'IO_ERROR', message: err instanceof Error ? err.message : String(err) })
        continue
      }
    }
    done.push(name)
    report.dropped.push({ name, collectionName: collectionOf.get(name)!, reclaimableBytes: figures.each.get(name)! })
  }
  report.reclaimedBytes = figures.freed(done)
  return report
}
