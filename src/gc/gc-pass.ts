import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import type { AbortOptions } from '../types.js'
import type { GcReport, RunGcOptions } from './gc-types.js'
import { markCatalog, markKnownAgain, markReferences, type ReferenceMark, type RestoreKeysSource, type SnapshotFilesSource } from './mark.js'
import { planPass, type ObjectSize } from './plan.js'
import { deleteObjects, findMissing, forgetDefinitions, forgetUnits, listFiles, missingError } from './sweep.js'

/** Where GC learns what snapshots and restore jobs reference. @internal */
export interface GcSources {
  /** Every object referenced by a snapshot in any state (pending, committed, deleting). */
  snapshotFiles: SnapshotFilesSource
  /** Every key an unfinished restore job reads or writes. */
  restoreKeys: RestoreKeysSource
}

function sum(objects: readonly ObjectSize[]): number {
  let total = 0
  for (const o of objects) total += o.size
  return total
}

/** Attempts of the reference mark when a snapshot's manifest vanished under it. */
const MARK_ATTEMPTS = 3

/**
 * {@link markReferences}, read again when it fails `CORRUPT`: a manifest disappears
 * legitimately when its snapshot is dropped between reading the record and the
 * manifest (the drop marks the record `deleting` first, so the next read sees that).
 * A manifest still missing on the last attempt is real corruption.
 */
async function markRefsSettled(ctx: ManagerContext, sources: GcSources, options: AbortOptions): Promise<ReferenceMark> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await markReferences(ctx.meta, sources.snapshotFiles, sources.restoreKeys, options)
    } catch (err) {
      if (!SnapshotError.is(err, 'CORRUPT') || attempt >= MARK_ATTEMPTS) throw err
    }
  }
}

/** The keys of `missing` that a committed snapshot still references and that still do not exist. */
async function stillMissing(ctx: ManagerContext, missing: readonly string[], refs: ReferenceMark, options: AbortOptions): Promise<string[]> {
  const out: string[] = []
  for (const key of missing) {
    if (!refs.committedKeys.has(key) && !refs.committedMetadataKeys.has(key)) continue
    if ((await ctx.objects.head(key, options)) === undefined) out.push(key)
  }
  return out
}

/**
 * One GC pass (SPEC section 7):
 *
 * 1. mark: the catalog (live files, dropped units with their drop times), then the
 *    reference index, the files of snapshots in any state and the keys of unfinished
 *    restore jobs; meanwhile, one listing of `files/`. Objects are immutable and only GC
 *    deletes under `files/`, so the listing holds every object referenced at mark time;
 *    objects it saw that were recorded after the mark are caught by the re-reads below;
 * 2. guard: an object a committed snapshot references that the listing lacks (and that
 *    is still referenced by a committed snapshot and still absent when checked again)
 *    aborts the pass with `CORRUPT`, deleting nothing;
 * 3. plan: dropped units past `dropGraceMs` (from the catalog's `droppedAt`) and pinned by
 *    nothing; orphans under `files/` known to nobody and older than `orphanGraceMs`;
 * 4. unless `dryRun`: forget the units' records in transactions that re-check the pins,
 *    delete their objects, forget emptied index definitions and dropped collections, and
 *    delete the orphans that a fresh read of the catalog and restore jobs still does not know.
 *
 * Every step is idempotent: a pass cut short (crash, abort) leaves at worst orphans that a
 * later pass collects.
 * @internal
 */
export async function runGcPass(ctx: ManagerContext, sources: GcSources, options: RunGcOptions = {}): Promise<GcReport> {
  const { signal } = options
  const dryRun = options.dryRun === true
  throwIfAborted(signal)
  const now = ctx.now()
  // The listing runs alongside the mark, so that it dominates the cost of a pass.
  const [{ catalog, refs }, listing] = await Promise.all([
    (async () => {
      const catalog = await markCatalog(ctx.catalog, { signal })
      return { catalog, refs: await markRefsSettled(ctx, sources, { signal }) }
    })(),
    listFiles(ctx.objects, { signal }),
  ])

  const missing = await findMissing(ctx.objects, refs, listing, { signal })
  if (missing.length > 0) {
    // A snapshot dropped since the mark takes its own objects (metadata, manifests) with
    // it: only what a committed snapshot still references, and is still absent, counts.
    const again = await markRefsSettled(ctx, sources, { signal })
    const still = await stillMissing(ctx, missing, again, { signal })
    if (still.length > 0) throw missingError(still)
  }

  const { dropGraceMs, orphanGraceMs } = ctx.options
  const plan = planPass(catalog, refs, listing, { now, dropGraceMs, orphanGraceMs })
  const report: GcReport = {
    deletedObjects: 0,
    deletedBytes: 0,
    keptForSnapshots: plan.keptForSnapshots,
    keptForGrace: plan.keptForGrace,
    orphansDeleted: 0,
    dryRun,
  }
  if (dryRun) {
    const unitObjects = plan.units.flatMap((c) => c.deletes)
    report.orphansDeleted = plan.orphans.length
    report.deletedObjects = unitObjects.length + plan.orphans.length
    report.deletedBytes = sum(unitObjects) + sum(plan.orphans)
    return report
  }

  throwIfAborted(signal)
  const { forgotten, kept } = await forgetUnits(ctx, plan.units, { signal })
  for (const c of kept) report.keptForSnapshots += c.deletes.length
  const unitObjects = forgotten.flatMap((c) => c.deletes)
  await deleteObjects(ctx.objects, unitObjects.map((o) => o.key), { signal })
  report.deletedObjects += unitObjects.length
  report.deletedBytes += sum(unitObjects)
  await forgetDefinitions(ctx, catalog, forgotten, { signal })

  if (plan.orphans.length > 0) {
    const known = await markKnownAgain(ctx.catalog, sources.restoreKeys, { signal })
    const orphans = plan.orphans.filter((o) => !known.has(o.key))
    await deleteObjects(ctx.objects, orphans.map((o) => o.key), { signal })
    report.orphansDeleted = orphans.length
    report.deletedObjects += orphans.length
    report.deletedBytes += sum(orphans)
  }
  return report
}
