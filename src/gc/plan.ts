import { FILES_PREFIX, SNAPSHOTS_PREFIX } from '../storage/layout.js'
import type { ObjectInfo } from '../storage/object-store.js'
import type { CatalogMark, DroppedUnit, ReferenceMark } from './mark.js'

/**
 * The decision phase of GC: from the marks and one listing each of `files/` and
 * `snapshots/`, which dropped units and orphans are collectable now, and what is kept and
 * why. Pure: no I/O.
 * @internal
 */

/** A dropped unit GC will collect, with the keys to delete once its records are gone. */
export interface UnitCollection {
  unit: DroppedUnit
  /** Existing objects of the unit that nothing else references, with their sizes. */
  deletes: ObjectSize[]
}

/** An object to delete and its size in bytes. */
export interface ObjectSize {
  key: string
  size: number
}

/** What one pass intends to do. */
export interface GcPlan {
  /** Units past their grace period and pinned by nothing. */
  units: UnitCollection[]
  /** Objects under `files/` nothing references, past the orphan grace. */
  orphans: ObjectInfo[]
  /** Objects under `snapshots/` that no snapshot record owns or lists, past the orphan grace. */
  snapshotOrphans: ObjectInfo[]
  keptForSnapshots: number
  keptForGrace: number
}

/** Grace periods and the pass's clock. */
export interface PlanOptions {
  now: number
  dropGraceMs: number
  orphanGraceMs: number
}

/** Size reported by {@link lookupIn} for an object outside the listing (the recorded size is used). */
const OUTSIDE_LISTING = -1

/** Where an object stands in the listing: `undefined` when it does not exist. */
export type ObjectLookup = (key: string) => ObjectInfo | undefined

/**
 * An existence lookup over a listing of `files/`. Objects elsewhere are outside the
 * listing and taken to exist (a host may keep files under its own scheme); objects under
 * `snapshots/` never count, as GC never deletes them.
 */
export function lookupIn(listing: ReadonlyMap<string, ObjectInfo>): ObjectLookup {
  return (key) => {
    if (key.startsWith(FILES_PREFIX)) return listing.get(key)
    if (key.startsWith(SNAPSHOTS_PREFIX)) return undefined
    return { key, size: OUTSIDE_LISTING, lastModified: 0 }
  }
}

/** True when a snapshot pins the unit by segment ID or by build ID. */
export function isPinned(unit: DroppedUnit, refs: ReferenceMark): boolean {
  if (unit.kind === 'segment' && refs.snapshots.segmentIds.has(unit.segmentId)) return true
  return unit.buildIds.some((b) => refs.snapshots.buildIds.has(b))
}

/** What GC decided about one key, and why (see `explainObject`). */
export type PlanVerdict = 'live' | 'snapshot' | 'restore' | 'grace' | 'collectable' | 'orphan'

/** One decision {@link planPass} took about the traced key. */
export interface PlanDecision {
  verdict: PlanVerdict
  /** The dropped unit the decision was about, if any. */
  unit?: DroppedUnit
  /** End of the grace period, for `grace`. */
  until?: number
}

/**
 * Records the decisions {@link planPass} takes about one key, at the places it takes them,
 * so an explanation and a pass cannot disagree. A key referenced by an unfinished restore
 * job is told apart from one a committed snapshot references by `isRestoreKey`.
 */
export interface PlanTrace {
  key: string
  isRestoreKey: (key: string) => boolean
  decisions: PlanDecision[]
}

/** Decides what the pass collects; with `trace`, records its decisions about one key. */
export function planPass(
  catalog: CatalogMark,
  refs: ReferenceMark,
  listing: ReadonlyMap<string, ObjectInfo>,
  snapshotListing: ReadonlyMap<string, ObjectInfo>,
  o: PlanOptions,
  trace?: PlanTrace,
): GcPlan {
  const lookup = lookupIn(listing)
  const plan: GcPlan = { units: [], orphans: [], snapshotOrphans: [], keptForSnapshots: 0, keptForGrace: 0 }
  const claimed = new Set<string>()
  const note = (key: string, d: PlanDecision): void => {
    if (trace !== undefined && key === trace.key) trace.decisions.push(d)
  }
  /** An object nothing references: an orphan past the orphan grace, kept before. */
  const orphanOrGrace = (info: ObjectInfo, orphans: ObjectInfo[]): void => {
    if (o.now - info.lastModified >= o.orphanGraceMs) {
      orphans.push(info)
      note(info.key, { verdict: 'orphan' })
    } else {
      plan.keptForGrace++
      note(info.key, { verdict: 'grace', until: info.lastModified + o.orphanGraceMs })
    }
  }
  const referencedVerdict = (key: string): PlanVerdict => (trace?.isRestoreKey(key) === true ? 'restore' : 'snapshot')
  // Keys of units kept (in grace, or pinned by a snapshot in any state): another dropped unit
  // naming the same key (hosts may share files between segments) must not delete it.
  const keptKeys = new Map<string, PlanDecision>()
  for (const unit of catalog.units) {
    const inGrace = o.now - unit.droppedAt < o.dropGraceMs
    if (!inGrace && !isPinned(unit, refs)) continue
    const d: PlanDecision = inGrace ? { verdict: 'grace', unit, until: unit.droppedAt + o.dropGraceMs } : { verdict: 'snapshot', unit }
    for (const f of unit.files) if (!keptKeys.has(f.key)) keptKeys.set(f.key, d)
  }
  for (const unit of catalog.units) {
    const existing = unit.files.filter((f) => lookup(f.key) !== undefined && !claimed.has(f.key))
    if (o.now - unit.droppedAt < o.dropGraceMs) {
      plan.keptForGrace += existing.length
      for (const f of existing) note(f.key, { verdict: 'grace', unit, until: unit.droppedAt + o.dropGraceMs })
      continue
    }
    if (isPinned(unit, refs)) {
      plan.keptForSnapshots += existing.length
      for (const f of existing) note(f.key, { verdict: 'snapshot', unit })
      continue
    }
    const deletes: ObjectSize[] = []
    for (const f of existing) {
      // A key a live segment also names is not this unit's to delete (hosts may share files).
      if (catalog.liveKeys.has(f.key)) {
        note(f.key, { verdict: 'live', unit })
        continue
      }
      if (refs.referencedKeys.has(f.key)) {
        plan.keptForSnapshots++
        note(f.key, { verdict: referencedVerdict(f.key), unit })
        continue
      }
      const kept = keptKeys.get(f.key)
      if (kept !== undefined) {
        // Counted once, by the unit that keeps it.
        note(f.key, kept)
        continue
      }
      claimed.add(f.key)
      note(f.key, { verdict: 'collectable', unit })
      const size = (lookup(f.key) as ObjectInfo).size
      deletes.push({ key: f.key, size: size === OUTSIDE_LISTING ? f.size : size })
    }
    plan.units.push({ unit, deletes })
  }
  for (const info of listing.values()) {
    if (catalog.knownKeys.has(info.key)) {
      if (catalog.liveKeys.has(info.key)) note(info.key, { verdict: 'live' })
      continue
    }
    if (refs.referencedKeys.has(info.key)) {
      note(info.key, { verdict: referencedVerdict(info.key) })
      continue
    }
    orphanOrGrace(info, plan.orphans)
  }
  for (const info of snapshotListing.values()) {
    if (refs.snapshots.isReferenced(info.key)) {
      note(info.key, { verdict: 'snapshot' })
      continue
    }
    orphanOrGrace(info, plan.snapshotOrphans)
  }
  return plan
}
