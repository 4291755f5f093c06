import { SnapshotError, throwIfAborted } from '../errors.js'
import { applyRetention, validateRetentionPolicy, type PruneKept, type PruneReport, type PrunedSnapshot, type RetentionPolicy } from '../policy/retention.js'
import { forEachLimit } from '../util/for-each-limit.js'
import type { RepositoryDeps } from './repository-deps.js'
import { decodeSourcePointer, entryKey, entryObjects, REPOSITORY_FILES_PREFIX, sourcePointerKey, type RepositoryEntry } from './repository-format.js'
import { RepositoryLock } from './repository-lock.js'
import type { RepositoryStore } from './repository-store.js'
import type { PruneRepositoryOptions } from './repository-types.js'

/** Keys per delete call. */
const DELETE_BATCH = 1000

/** Source pointers read at once (small objects). */
const POINTER_READS = 16

/**
 * `pruneRepository` (SPEC sections 12 and 14): the retention policy applied to the
 * repository's entries, grouped by collection name (restic's `forget --prune`), then the
 * deletion of files no remaining entry references.
 *
 * - Every entry must read back: one that does not (`CORRUPT`, `UNSUPPORTED_VERSION`) fails
 *   the prune before anything is deleted (what it references is unknown, so no file could
 *   safely be deleted).
 * - The source pointers (`sources/{storeId}/{collectionId}.json`) that name a dropped
 *   entry are deleted first (each read back: one that names another entry stays), then the
 *   dropped entries' objects, then the files that only dropped entries referenced, then
 *   files under `files/` that no entry references and that are older than the manager's
 *   `orphanGraceMs` (what an export that never finished left; a younger one may belong to
 *   an export under way). A crash in between leaves files no entry references: the next
 *   prune deletes them.
 * - `reclaimableBytes` of a dropped entry: the bytes of the files only it references;
 *   `reclaimedBytes`: the files the dropped entries free together (orphans not counted).
 * - A prune that deletes holds the repository's exclusive lock (`repository-lock.ts`): it
 *   fails with `IN_USE` while an export runs, and exports fail meanwhile, because an
 *   export may count on a file this prune would delete. A dry run takes no lock.
 * @internal
 */
export async function pruneRepository(deps: RepositoryDeps, repo: RepositoryStore, options: PruneRepositoryOptions): Promise<PruneReport> {
  validateRetentionPolicy(options.policy)
  const dryRun = options.dryRun ?? false
  if (typeof dryRun !== 'boolean') throw new TypeError(`Expected \`dryRun\` to be a boolean, got \`${typeof dryRun}\``)
  const { signal } = options
  throwIfAborted(signal)
  await repo.requireInfo({ signal })
  const lock = dryRun ? undefined : await RepositoryLock.acquire(repo, 'prune', () => deps.ctx.now(), { signal })
  try {
    return await prune(deps, repo, options.policy, dryRun, signal, () => lock?.assertFresh())
  } finally {
    await lock?.release()
  }
}

/** `assertFresh`: throws once the prune's lock went stale (an export may have started since): checked before every delete. */
async function prune(deps: RepositoryDeps, repo: RepositoryStore, policy: RetentionPolicy, dryRun: boolean, signal: AbortSignal | undefined, assertFresh: () => void): Promise<PruneReport> {
  const entries = await repo.entries({ signal })
  const byId = new Map(entries.map((e) => [e.id, e]))
  const decision = applyRetention(
    entries.map((e) => ({ name: e.id, createdAt: e.snapshot.createdAt, group: e.snapshot.collectionName })),
    policy,
  )
  const kept = new Set(decision.kept.map((k) => k.name))
  /** File key → entries referencing it, and its size. */
  const refs = new Map<string, { by: Set<string>; size: number }>()
  for (const e of entries) {
    for (const o of entryObjects(e)) {
      let r = refs.get(o.key)
      if (r === undefined) refs.set(o.key, (r = { by: new Set(), size: o.size }))
      r.by.add(e.id)
    }
  }
  const freed = new Map<string, number>()
  for (const [key, r] of refs) if ([...r.by].every((id) => !kept.has(id))) freed.set(key, r.size)
  const exclusive = (e: RepositoryEntry): number => {
    let n = 0
    const seen = new Set<string>()
    for (const o of entryObjects(e)) {
      const r = refs.get(o.key)
      if (r !== undefined && r.by.size === 1 && !seen.has(o.key)) n += r.size
      seen.add(o.key)
    }
    return n
  }
  const report: PruneReport = {
    dryRun,
    kept: decision.kept.map((k): PruneKept => ({ name: k.name, collectionName: byId.get(k.name)?.snapshot.collectionName ?? '', reasons: k.reasons })),
    dropped: decision.dropped.map((id): PrunedSnapshot => {
      const e = byId.get(id) as RepositoryEntry
      return { name: id, collectionName: e.snapshot.collectionName, reclaimableBytes: exclusive(e) }
    }),
    failed: [],
    reclaimedBytes: [...freed.values()].reduce((a, b) => a + b, 0),
  }
  if (dryRun) return report
  // Pointers before the entries they name, so that a crash leaves none naming a deleted entry.
  const dropped = decision.dropped.map((id) => byId.get(id) as RepositoryEntry)
  await deleteAll(repo, await pointersTo(repo, dropped, signal), signal, assertFresh)
  // Entries next: from here on the files they alone named are unreferenced.
  assertFresh()
  await deleteAll(repo, decision.dropped.map(entryKey), signal, assertFresh)
  const orphans: string[] = []
  const now = deps.ctx.now()
  for await (const info of repo.list(REPOSITORY_FILES_PREFIX, { signal })) {
    if (refs.has(info.key)) continue
    if (now - info.lastModified >= deps.ctx.options.orphanGraceMs) orphans.push(info.key)
  }
  await deleteAll(repo, [...freed.keys(), ...orphans], signal, assertFresh)
  return report
}

/**
 * The source pointers of the dropped entries' sources that name one of them, read back
 * now (an export moves a pointer to its own entry; none runs while the prune holds its
 * exclusive lock). A pointer that is absent or does not read back is left alone: export
 * ignores it.
 */
async function pointersTo(repo: RepositoryStore, dropped: readonly RepositoryEntry[], signal: AbortSignal | undefined): Promise<string[]> {
  const ids = new Set(dropped.map((e) => e.id))
  const keys = new Set<string>()
  for (const e of dropped) {
    const key = sourcePointerKey(e.source.storeId, e.source.collectionId)
    if (key !== undefined) keys.add(key)
  }
  const out: string[] = []
  await forEachLimit(
    [...keys],
    POINTER_READS,
    async (key) => {
      const bytes = await repo.get(key, { signal })
      if (bytes === undefined) return
      let id: string
      try {
        id = decodeSourcePointer(bytes, key)
      } catch (err) {
        if (SnapshotError.is(err, 'CORRUPT') || SnapshotError.is(err, 'UNSUPPORTED_VERSION')) return
        throw err
      }
      if (ids.has(id)) out.push(key)
    },
    signal,
  )
  return out.sort()
}

async function deleteAll(repo: RepositoryStore, keys: readonly string[], signal: AbortSignal | undefined, assertFresh: () => void): Promise<void> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) {
    throwIfAborted(signal)
    assertFresh()
    await repo.delete(keys.slice(i, i + DELETE_BATCH), { signal })
  }
}
