import { SnapshotError, throwIfAborted } from '../errors.js'
import { decodeManifest } from '../format/manifest-codec.js'
import { keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import { segmentFiles } from '../meta/segment-files.js'
import type { MetaStore } from '../meta/meta-store.js'
import { layout, snapshotObjectOwner } from '../storage/layout.js'
import type { ObjectStore } from '../storage/object-store.js'
import type { AbortOptions } from '../types.js'
import { contentHash, SnapshotList } from './snapshot-list.js'
import type { SnapshotRecord } from './snapshot-record.js'

/**
 * What every snapshot record references, as GC needs it (SPEC sections 7 and 11): the
 * segment and build IDs pinned by snapshots in any state, the data files of committed
 * snapshots, and the objects under `snapshots/` that a snapshot owns or lists.
 *
 * A pass reads every record (small), then each list and manifest it has not read before:
 * lists are cached by key and content hash (the record names both), manifests by key. A
 * manifest key names one snapshot's capture of one segment; a create may rewrite it while
 * its snapshot is pending (a rescan), never once the snapshot committed, and only
 * committed snapshots' manifests are read here, so a cached one is never stale. A pass
 * when nothing changed reads no list and no manifest. Entries no record referenced in a
 * pass are dropped after it.
 * @internal
 */

/** What GC keeps of one list between passes: compact columns, not a list object. */
interface ListPins {
  collectionId: number
  segmentIds: Float64Array
  owners: Float64Array
  buildIds: Float64Array
}

/** The references of every snapshot, read in one pass. */
export interface SnapshotMark {
  /** IDs of every snapshot record (any state). */
  snapshotIds: Set<number>
  /** Segment and build IDs pinned by a snapshot in any state. */
  segmentIds: Set<number>
  buildIds: Set<number>
  /** Data and index files of committed snapshots, with the sizes their manifests record. */
  committedFiles: Map<string, number>
  /** Metadata JSON, list and manifest objects of committed snapshots (they must exist). */
  committedObjects: Set<string>
  /** Manifests listed by any snapshot's list: collection ID → owner snapshot ID → segment IDs. */
  listedManifests: Map<number, Map<number, Set<number>>>
  /** Metadata JSON and list keys of every record. */
  ownObjects: Set<string>
  /**
   * True when `key` (under `snapshots/`) is an object a snapshot record owns (its ID is in
   * the key) or lists, or of a shape vecsnap does not write (never GC's to delete).
   */
  isReferenced(key: string): boolean
}

function isSnapshotObjectReferenced(mark: SnapshotMark, key: string): boolean {
  const owner = snapshotObjectOwner(key)
  if (mark.ownObjects.has(key)) return true
  if (owner === undefined) return true // not a shape vecsnap writes: never ours to delete
  if (mark.snapshotIds.has(owner.snapshotId)) return true
  const m = /\/manifests\/\d+\/(\d+)\.avro$/.exec(key)
  return m !== null && mark.listedManifests.get(owner.collectionId)?.get(owner.snapshotId)?.has(Number(m[1])) === true
}

function addListed(into: SnapshotMark['listedManifests'], collectionId: number, owner: number, segmentId: number): boolean {
  let byOwner = into.get(collectionId)
  if (byOwner === undefined) into.set(collectionId, (byOwner = new Map()))
  let segments = byOwner.get(owner)
  if (segments === undefined) byOwner.set(owner, (segments = new Set()))
  if (segments.has(segmentId)) return false
  segments.add(segmentId)
  return true
}

/** Reads snapshot references for GC, with the caches described above. @internal */
export class SnapshotReferences {
  readonly #meta: MetaStore
  readonly #objects: ObjectStore
  #lists = new Map<string, ListPins>()
  #manifests = new Map<string, { key: string; size: number }[]>()
  /** Lists and manifests read from the store by this instance (not served from the caches). */
  readonly reads = { lists: 0, manifests: 0 }

  constructor(meta: MetaStore, objects: ObjectStore) {
    this.#meta = meta
    this.#objects = objects
  }

  async #pins(r: SnapshotRecord, options: AbortOptions): Promise<ListPins | undefined> {
    const ref = r.list
    if (ref === undefined) return undefined
    const cacheKey = `${ref.key}#${ref.hash}`
    const hit = this.#lists.get(cacheKey)
    if (hit !== undefined) return hit
    const bytes = await this.#objects.get(ref.key, options)
    this.reads.lists++
    if (bytes === undefined || bytes.byteLength !== ref.size || contentHash(bytes) !== ref.hash) {
      // A deleting snapshot pins nothing it still needs; GC goes on without it.
      if (r.state === 'deleting') return undefined
      throw new SnapshotError('CORRUPT', `snapshot ${r.name}: list ${ref.key} is ${bytes === undefined ? 'missing' : 'not the one its record names'}`, {
        details: { missing: bytes === undefined ? [ref.key] : [], snapshotId: r.id },
      })
    }
    const list = new SnapshotList(bytes, ref.key)
    const pins: ListPins = { collectionId: list.header.collection.id, segmentIds: list.segmentIds, owners: list.owners, buildIds: list.buildIds }
    this.#lists.set(cacheKey, pins)
    return pins
  }

  async #manifestFiles(key: string, options: AbortOptions): Promise<{ key: string; size: number }[] | undefined> {
    const hit = this.#manifests.get(key)
    if (hit !== undefined) return hit
    const bytes = await this.#objects.get(key, options)
    this.reads.manifests++
    if (bytes === undefined) return undefined
    const files = [...segmentFiles(decodeManifest(bytes, key))].map(({ file }) => ({ key: file.key, size: file.size }))
    this.#manifests.set(key, files)
    return files
  }

  /**
   * Reads every snapshot record and what it references. `CORRUPT` when a committed
   * snapshot's list or manifest is missing or damaged; the caller reads again to tell a
   * snapshot dropped meanwhile from real damage.
   */
  async mark(options: AbortOptions = {}): Promise<SnapshotMark> {
    const { signal } = options
    throwIfAborted(signal)
    const mark: SnapshotMark = {
      snapshotIds: new Set(),
      segmentIds: new Set(),
      buildIds: new Set(),
      committedFiles: new Map(),
      committedObjects: new Set(),
      listedManifests: new Map(),
      ownObjects: new Set(),
      isReferenced: (key) => isSnapshotObjectReferenced(mark, key),
    }
    const usedLists = new Map<string, ListPins>()
    const committed = new Map<number, Map<number, Set<number>>>()
    const records: SnapshotRecord[] = []
    for await (const [, value] of this.#meta.iterate(prefixRange(keys.snapshotPrefix), { signal })) records.push(JSON.parse(value) as SnapshotRecord)
    for (const r of records) {
      mark.snapshotIds.add(r.id)
      mark.ownObjects.add(r.metadataKey)
      if (r.list !== undefined) mark.ownObjects.add(r.list.key)
      if (r.state === 'committed') {
        mark.committedObjects.add(r.metadataKey)
        if (r.list !== undefined) mark.committedObjects.add(r.list.key)
      }
      const pins = await this.#pins(r, { signal })
      if (pins === undefined) continue
      usedLists.set(`${r.list?.key}#${r.list?.hash}`, pins)
      for (const id of pins.segmentIds) mark.segmentIds.add(id)
      for (const id of pins.buildIds) mark.buildIds.add(id)
      for (let i = 0; i < pins.segmentIds.length; i++) {
        addListed(mark.listedManifests, pins.collectionId, pins.owners[i], pins.segmentIds[i])
        if (r.state === 'committed') addListed(committed, pins.collectionId, pins.owners[i], pins.segmentIds[i])
      }
    }
    const usedManifests = new Map<string, { key: string; size: number }[]>()
    for (const [collectionId, byOwner] of committed) {
      for (const [owner, segments] of byOwner) {
        for (const segmentId of segments) {
          throwIfAborted(signal)
          const key = layout.snapshotManifest(collectionId, owner, segmentId)
          const files = await this.#manifestFiles(key, { signal })
          if (files === undefined) throw new SnapshotError('CORRUPT', `manifest ${key} of a committed snapshot is missing`, { details: { missing: [key] } })
          usedManifests.set(key, files)
          // Checked against every pass's listing, cached or not: a manifest deleted out of band is reported.
          mark.committedObjects.add(key)
          for (const f of files) mark.committedFiles.set(f.key, f.size)
        }
      }
    }
    this.#lists = usedLists
    this.#manifests = usedManifests
    return mark
  }
}
