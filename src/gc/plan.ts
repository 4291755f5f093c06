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

/** Decides what the pass collects. */
export function planPass(
  catalog: CatalogMark,
  refs: ReferenceMark,
  listing: ReadonlyMap<string, ObjectInfo>,
  snapshotListing: ReadonlyMap<string, ObjectInfo>,
  o: PlanOptions,
): GcPlan {
  const lookup = lookupIn(listing)
  const plan: GcPlan = { units: [], orphans: [], snapshotOrphans: [], keptForSnapshots: 0, keptForGrace: 0 }
  const claimed = new Set<string>()
  for (const unit of catalog.units) {
    const existing = unit.files.filter((f) => lookup(f.key) !== undefined && !claimed.has(f.key))
    if (o.now - unit.droppedAt < o.dropGraceMs) {
      plan.keptForGrace += existing.length
      continue
    }
    if (isPinned(unit, refs)) {
      plan.keptForSnapshots += existing.length
      continue
    }
    const deletes: ObjectSize[] = []
    for (const f of existing) {
      // A key a live segment also names is not this unit's to delete (hosts may share files).
      if (catalog.liveKeys.has(f.key)) continue
      if (refs.referencedKeys.has(f.key)) {
        plan.keptForSnapshots++
        continue
      }
      claimed.add(f.key)
      const size = (lookup(f.key) as ObjectInfo).size
      deletes.push({ key: f.key, size: size === OUTSIDE_LISTING ? f.size : size })
    }
    plan.units.push({ unit, deletes })
  }
  for (const info of listing.values()) {
    if (catalog.knownKeys.has(info.key) || refs.referencedKeys.has(info.key)) continue
    if (o.now - info.lastModified >= o.orphanGraceMs) plan.orphans.push(info)
    else plan.keptForGrace++
  }
  for (const info of snapshotListing.values()) {
    if (refs.snapshots.isReferenced(info.key)) continue
    if (o.now - info.lastModified >= o.orphanGraceMs) plan.snapshotOrphans.push(info)
    else plan.keptForGrace++
  }
  return plan
}
