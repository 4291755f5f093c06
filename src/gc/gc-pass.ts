import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import type { AbortOptions } from '../types.js'
import type { GcReport, RunGcOptions } from './gc-types.js'
import { markCatalog, markKnownAgain, markReferences, type ReferenceMark, type RestoreKeysSource, type SnapshotMarkSource } from './mark.js'
import { planPass, type ObjectSize } from './plan.js'
import { deleteObjects, deleteSnapshotObjects, findMissing, forgetDefinitions, forgetUnits, listFiles, missingError } from './sweep.js'
import { FILES_PREFIX, SNAPSHOTS_PREFIX } from '../storage/layout.js'
import { readSettled } from '../util/read-settled.js'

/** Where GC learns what snapshots and restore jobs reference. @internal */
export interface GcSources {
  /** What every snapshot record (pending, committed, deleting) references. */
  snapshots: SnapshotMarkSource
  /** Every key an unfinished restore job reads or writes. */
  restoreKeys: RestoreKeysSource
}

function sum(objects: readonly ObjectSize[]): number {
  let total = 0
  for (const o of objects) total += o.size
  return total
}

/**
 * {@link markReferences}, read again while a snapshot dropped under it makes it fail
 * `CORRUPT` (see `readSettled`). Used by passes and by `explainObject`.
 * @internal
 */
export function markRefsSettled(ctx: ManagerContext, sources: GcSources, options: AbortOptions): Promise<ReferenceMark> {
  return readSettled(() => markReferences(sources.snapshots, sources.restoreKeys, options))
}

/** The keys of `missing` that a committed snapshot still references and that still do not exist. */
async function stillMissing(ctx: ManagerContext, missing: readonly string[], refs: ReferenceMark, options: AbortOptions): Promise<string[]> {
  const out: string[] = []
  for (const key of missing) {
    if (!refs.snapshots.committedFiles.has(key) && !refs.snapshots.committedObjects.has(key)) continue
    if ((await ctx.objects.head(key, options)) === undefined) out.push(key)
  }
  return out
}

/**
 * Live catalog keys under `files/` that the listing lacks and that are still absent and
 * still live when checked again (a file recorded after the listing started is there when
 * looked up; a segment dropped since is no longer live). Keys in `referenced` are left
 * out: an unfinished restore job's target files come and go with it (a rollback deletes
 * them before the target's segment records), and a committed snapshot's files are
 * checked by guard 1 already.
 */
async function missingLiveKeys(
  ctx: ManagerContext,
  liveKeys: ReadonlySet<string>,
  referenced: ReadonlySet<string>,
  listing: ReadonlyMap<string, unknown>,
  options: AbortOptions,
): Promise<string[]> {
  const candidates: string[] = []
  for (const key of liveKeys) if (key.startsWith(FILES_PREFIX) && !listing.has(key) && !referenced.has(key)) candidates.push(key)
  if (candidates.length === 0) return []
  const absent: string[] = []
  for (const key of candidates) if ((await ctx.objects.head(key, options)) === undefined) absent.push(key)
  if (absent.length === 0) return []
  const stillLive = (await markCatalog(ctx.catalog, options)).liveKeys
  return absent.filter((k) => stillLive.has(k)).sort()
}

/** The `CORRUPT` rejection of a pass that found files of live segments missing. */
function liveMissingError(missing: readonly string[]): SnapshotError {
  const shown = missing.slice(0, 10).join(', ')
  const more = missing.length > 10 ? ` and ${missing.length - 10} more` : ''
  return new SnapshotError(
    'CORRUPT',
    `GC aborted, nothing deleted: ${missing.length} file(s) of live segments are not in the store's listing: ${shown}${more} ` +
      `(if they exist, the keys the catalog records are not in the form the store lists them)`,
    { details: { missing: [...missing], live: true } },
  )
}

/**
 * One GC pass (SPEC section 7):
 *
 * 1. mark: the catalog (live files, dropped units with their drop times), then every
 *    snapshot record with what its list pins (segment and build IDs, any state) and the
 *    data files of committed ones, and the keys of unfinished restore jobs; meanwhile, one
 *    listing each of `files/` and `snapshots/`. Objects are immutable and only GC
 *    deletes under `files/`, so the listing holds every object referenced at mark time;
 *    objects it saw that were recorded after the mark are caught by the re-reads below;
 * 2. guard: an object a committed snapshot references, or a file of a live segment (not
 *    one an unfinished restore job writes), that the listing lacks (and that is still referenced, or live, and still absent when checked
 *    again) aborts the pass with `CORRUPT`, deleting nothing;
 * 3. plan: dropped units past `dropGraceMs` (from the catalog's `droppedAt`) and pinned by
 *    nothing; orphans under `files/` known to nobody and older than `orphanGraceMs`;
 * 4. unless `dryRun`: forget the units' records in transactions that re-check the pins,
 *    delete their objects, forget emptied index definitions and dropped collections, and
 *    delete the orphans that a fresh read of the catalog and restore jobs still does not know,
 *    and the objects under `snapshots/` that no record owns or lists (leftovers of a crash
 *    or of a purge) once a fresh read of the records still does not know them.
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
  // The listings run alongside the mark, so that they dominate the cost of a pass.
  const [{ catalog, refs }, listing, snapshotListing] = await Promise.all([
    (async () => {
      const catalog = await markCatalog(ctx.catalog, { signal })
      return { catalog, refs: await markRefsSettled(ctx, sources, { signal }) }
    })(),
    listFiles(ctx.objects, FILES_PREFIX, { signal }),
    listFiles(ctx.objects, SNAPSHOTS_PREFIX, { signal }),
  ])

  const missing = await findMissing(ctx.objects, refs, listing, snapshotListing, { signal })
  if (missing.length > 0) {
    // A snapshot dropped since the mark takes its own objects (metadata, manifests) with
    // it: only what a committed snapshot still references, and is still absent, counts.
    const again = await markRefsSettled(ctx, sources, { signal })
    const still = await stillMissing(ctx, missing, again, { signal })
    if (still.length > 0) throw missingError(still)
  }

  // Guard 2: a live segment's file the listing does not show. Either data is already lost or
  // the keys the catalog records are not the form the store lists (a prefix, Unicode
  // normalization): then every live file would look like an orphan. Abort, deleting nothing.
  const liveMissing = await missingLiveKeys(ctx, catalog.liveKeys, refs.referencedKeys, listing, { signal })
  if (liveMissing.length > 0) throw liveMissingError(liveMissing)

  const { dropGraceMs, orphanGraceMs } = ctx.options
  const plan = planPass(catalog, refs, listing, snapshotListing, { now, dropGraceMs, orphanGraceMs })
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
    const orphans = plan.orphans.length + plan.snapshotOrphans.length
    report.orphansDeleted = orphans
    report.deletedObjects = unitObjects.length + orphans
    report.deletedBytes = sum(unitObjects) + sum(plan.orphans) + sum(plan.snapshotOrphans)
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
  if (plan.snapshotOrphans.length > 0) {
    // Read the records again: a snapshot created since the mark owns its objects. Only
    // objects that still exist count (a drop since the listing may have removed them).
    const again = await markRefsSettled(ctx, sources, { signal })
    const orphans: ObjectSize[] = []
    for (const o of plan.snapshotOrphans) {
      if (again.snapshots.isReferenced(o.key)) continue
      const head = await ctx.objects.head(o.key, { signal })
      if (head !== undefined) orphans.push({ key: o.key, size: head.size })
    }
    await deleteSnapshotObjects(ctx.objects, orphans.map((o) => o.key), { signal })
    report.orphansDeleted += orphans.length
    report.deletedObjects += orphans.length
    report.deletedBytes += sum(orphans)
  }
  return report
}
