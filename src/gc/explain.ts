import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { segmentFiles } from '../meta/segment-files.js'
import { FILES_PREFIX, SNAPSHOTS_PREFIX, snapshotObjectOwner } from '../storage/layout.js'
import { validateObjectKey } from '../storage/keys-validate.js'
import type { ObjectInfo } from '../storage/object-store.js'
import type { AbortOptions } from '../types.js'
import type { ExplainReason, ObjectExplanation } from './gc-types.js'
import { markRefsSettled } from './gc-pass.js'
import { markCatalog, type RestoreKeysSource, type SnapshotMarkSource } from './mark.js'
import { planPass, type PlanDecision, type PlanTrace } from './plan.js'

/**
 * `explainObject` (SPEC section 13): why GC keeps a key or would delete it. It runs GC's
 * own mark and decision code (`markCatalog`, `markRefsSettled`, `planPass`) over a listing
 * of that one key, with a trace that records each decision `planPass` takes about it, so an
 * explanation and the next pass over the same state agree. Read-only.
 * @internal
 */

/** What explaining needs besides GC's sources: who references a key, by snapshot name. */
export interface ExplainSources {
  snapshots: SnapshotMarkSource
  restoreKeys: RestoreKeysSource
  /** Committed snapshots whose files include `key`. */
  snapshotsReferencing: (key: string, options: AbortOptions) => Promise<{ id: number; name: string }[]>
}

function unitReason(d: PlanDecision): ExplainReason[] {
  if (d.unit === undefined) return []
  if (d.unit.kind === 'segment') return [{ kind: 'segment', id: d.unit.segmentId }]
  return [{ kind: 'index-build', id: d.unit.buildId }]
}

/** Explains `key` from the state now (see {@link ExplainSources}). */
export async function explainKey(ctx: ManagerContext, sources: ExplainSources, key: string, options: AbortOptions = {}): Promise<ObjectExplanation> {
  validateObjectKey(key)
  const { signal } = options
  throwIfAborted(signal)
  const now = ctx.now()
  const catalog = await markCatalog(ctx.catalog, { signal })
  const refs = await markRefsSettled(ctx, sources, { signal })
  const info = await ctx.objects.head(key, { signal })
  // An absent object is explained as if it appeared now: what GC would do with it.
  const entry: ObjectInfo = info ?? { key, size: 0, lastModified: now }
  const listing = new Map<string, ObjectInfo>()
  const snapshotListing = new Map<string, ObjectInfo>()
  if (key.startsWith(FILES_PREFIX)) listing.set(key, entry)
  else if (key.startsWith(SNAPSHOTS_PREFIX)) snapshotListing.set(key, entry)
  const committed = refs.snapshots.committedFiles
  const trace: PlanTrace = { key, isRestoreKey: (k) => !committed.has(k), decisions: [] }
  planPass(catalog, refs, listing, snapshotListing, { now, dropGraceMs: ctx.options.dropGraceMs, orphanGraceMs: ctx.options.orphanGraceMs }, trace)

  let decisions = trace.decisions
  if (decisions.length === 0) {
    // Outside `files/` and `snapshots/`, GC only touches files the catalog records.
    if (catalog.liveKeys.has(key)) decisions = [{ verdict: 'live' }]
    else if (refs.referencedKeys.has(key)) decisions = [{ verdict: trace.isRestoreKey(key) ? 'restore' : 'snapshot' }]
    else throw new SnapshotError('INVALID_ARGUMENT', `GC does not manage ${JSON.stringify(key)}: it is neither under ${FILES_PREFIX} or ${SNAPSHOTS_PREFIX} nor recorded by the catalog`)
  }
  // GC deletes the key if any decision collects it; otherwise the first decision keeps it.
  const deleting = decisions.find((d) => d.verdict === 'collectable' || d.verdict === 'orphan')
  const verdict = (deleting ?? decisions[0]).verdict
  const reasons: ExplainReason[] = []
  for (const d of decisions.filter((x) => x.verdict === verdict)) {
    reasons.push(...unitReason(d))
    if (d.until !== undefined) reasons.push({ kind: 'grace', until: d.until })
  }
  if (verdict === 'live') {
    for await (const s of ctx.catalog.listAllSegments({ signal })) {
      if (s.state === 'dropped') continue
      for (const { file } of segmentFiles(s)) if (file.key === key) reasons.push({ kind: 'segment', id: s.id })
    }
  } else if (verdict === 'snapshot') {
    const owner = snapshotObjectOwner(key)
    if (owner !== undefined) reasons.push({ kind: 'snapshot', id: owner.snapshotId })
    for (const s of await sources.snapshotsReferencing(key, { signal })) reasons.push({ kind: 'snapshot', id: s.id, name: s.name })
  } else if (verdict === 'restore') {
    reasons.push({ kind: 'restore-job' })
  }
  const out: ObjectExplanation = { key, exists: info !== undefined, verdict, reasons: dedupe(reasons) }
  if (info !== undefined) out.sizeBytes = info.size
  return out
}

function dedupe(reasons: ExplainReason[]): ExplainReason[] {
  const seen = new Set<string>()
  return reasons.filter((r) => {
    const k = JSON.stringify([r.kind, r.id, r.until])
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}
