import { SnapshotError, throwIfAborted } from '../errors.js'
import { decodeManifest } from '../format/manifest-codec.js'
import type { Catalog } from '../meta/catalog.js'
import { keys } from '../meta/keys.js'
import { prefixRange, type MetaStore } from '../meta/meta-store.js'
import { segmentFiles } from '../meta/segment-files.js'
import { layout } from '../storage/layout.js'
import type { ObjectStore } from '../storage/object-store.js'
import type { AbortOptions } from '../types.js'
import { forEachLimit } from '../util/for-each-limit.js'
import { readSettled } from '../util/read-settled.js'
import type { ListReader } from './list-reader.js'
import type { SnapshotRecord } from './snapshot-record.js'
import type { SpaceReport, SpaceReportOptions } from './snapshot-types.js'

/**
 * Space accounting (SPEC section 13), with ZFS semantics over segment and index files,
 * from metadata only: sizes are those the catalog records for live segments and the
 * manifests record for snapshots; nothing lists the object store.
 *
 * Every call reads the snapshot records, the catalog's segment records and the restore
 * use counts; lists come through the manager's list cache and manifests through a cache of
 * their file keys and sizes here (a committed snapshot's manifest never changes; the cache
 * keeps those the last call used), so a report after the first reads no manifest unless
 * snapshots were created since.
 *
 * A file is *held* when a live segment of any collection names it, or it belongs to a
 * snapshot an unfinished restore reads (that snapshot cannot be dropped). Dropping a set
 * of snapshots frees a file the set references when no snapshot outside the set
 * references it and it is not held; `exclusiveBytes`, `snapshotOnlyBytes` and
 * `reclaimableBytes` are that rule applied to one snapshot, to every snapshot of a
 * collection, and to the set given. Pending and deleting snapshots are not counted (a
 * pending one pins live segments; a deleting one is already going).
 * @internal
 */

/** What accounting reads of a snapshot's list. */
interface ListColumns {
  count: number
  owners: Float64Array
  segmentIds: Float64Array
}

/** Manifests read at once. */
const READ_CONCURRENCY = 8

/**
 * One accounting pass. Work is per distinct manifest, not per snapshot × file: a file
 * belongs to one segment and a snapshot lists each segment once, so within a snapshot a
 * file is in at most one manifest, and the snapshots referencing a file are counted by
 * summing, over the manifests holding it, how many snapshots list each.
 */
interface Accounting {
  /** Committed snapshots by `createdAt` then `id`, with the manifests they list (indices) and, in the same order, their segment IDs. */
  snapshots: { record: SnapshotRecord; manifests: Uint32Array; segmentIds: Float64Array }[]
  /** Per manifest: its files (indices), its collection, and how many snapshots list it. */
  manifests: { files: Uint32Array; collectionId: number; listedBy: number }[]
  sizes: number[]
  /** 1 when a live segment names the file or an unfinished restore's snapshot references it. */
  held: Uint8Array
  /** Snapshots referencing each file. */
  refs: Uint32Array
  /** Collection ID of the manifests holding each file; -1 when manifests of several collections do; NaN when none. */
  refCollection: Float64Array
  /** Live bytes per collection ID. */
  liveBytes: Map<number, number>
  /** Collection ID of the live segment naming each file; NaN when none does. */
  liveOwner: number[]
  /** File key → index. */
  fileOf: ReadonlyMap<string, number>
}

/**
 * Per manifest, the bytes of its files that one snapshot references and nothing holds: if
 * a snapshot lists the manifest, dropping that snapshot alone frees them.
 */
function manifestExclusiveBytes(a: Accounting): Float64Array {
  const out = new Float64Array(a.manifests.length)
  a.manifests.forEach((m, i) => {
    for (const f of m.files) if (a.refs[f] === 1 && a.held[f] === 0) out[i] += a.sizes[f]
  })
  return out
}

/** Computes space reports for a manager. @internal */
export class SpaceAccountant {
  readonly #meta: MetaStore
  readonly #objects: ObjectStore
  readonly #catalog: Catalog
  readonly #lists: ListReader
  #manifests = new Map<string, { keys: string[]; sizes: number[] }>()
  /** The columns this needs of each list the last call used (16 bytes per segment; the shared list cache is smaller than 100 × 10k). */
  #listCache = new Map<string, ListColumns>()
  /** Manifests read from the store (not from the cache), for tests and benchmarks. */
  readonly reads = { manifests: 0 }

  constructor(deps: { meta: MetaStore; objects: ObjectStore; catalog: Catalog; lists: ListReader }) {
    this.#meta = deps.meta
    this.#objects = deps.objects
    this.#catalog = deps.catalog
    this.#lists = deps.lists
  }

  async #listColumns(r: SnapshotRecord, options: AbortOptions): Promise<ListColumns> {
    const hit = this.#listCache.get(`${r.list!.key}#${r.list!.hash}`)
    if (hit !== undefined) return hit
    const list = await this.#lists.read(r.list!, options)
    return { count: list.count, owners: list.owners, segmentIds: list.segmentIds }
  }

  async #manifest(key: string, options: AbortOptions): Promise<{ keys: string[]; sizes: number[] }> {
    const hit = this.#manifests.get(key)
    if (hit !== undefined) return hit
    const bytes = await this.#objects.get(key, options)
    this.reads.manifests++
    if (bytes === undefined) throw new SnapshotError('CORRUPT', `manifest ${key} of a committed snapshot is missing`, { details: { missing: [key] } })
    const out = { keys: [] as string[], sizes: [] as number[] }
    for (const { file } of segmentFiles(decodeManifest(bytes, key))) {
      out.keys.push(file.key)
      out.sizes.push(file.size)
    }
    this.#manifests.set(key, out)
    return out
  }

  /** {@link #accountOnce}, read again while a snapshot dropped under it makes it fail `CORRUPT` (see `readSettled`). */
  #account(options: AbortOptions): Promise<Accounting> {
    return readSettled(() => this.#accountOnce(options))
  }

  async #accountOnce(options: AbortOptions): Promise<Accounting> {
    const { signal } = options
    throwIfAborted(signal)
    // Restores first, then the catalog, then snapshots: a restore that ends meanwhile only
    // makes the report count a file as held that a later report frees.
    const inUse = new Set<number>()
    for await (const [key] of this.#meta.iterate(prefixRange(keys.restoreSnapshotUsesPrefix), { signal })) inUse.add(Number(key.slice(keys.restoreSnapshotUsesPrefix.length)))
    const index = new Map<string, number>()
    const sizes: number[] = []
    const held: number[] = []
    const liveOwner: number[] = []
    const fileIndex = (key: string, size: number): number => {
      let i = index.get(key)
      if (i === undefined) {
        i = sizes.length
        index.set(key, i)
        sizes.push(size)
        held.push(0)
        liveOwner.push(Number.NaN)
      }
      return i
    }
    const liveBytes = new Map<number, number>()
    for await (const s of this.#catalog.listAllSegments({ signal })) {
      if (s.state === 'dropped') continue
      let bytes = liveBytes.get(s.collectionId) ?? 0
      for (const { file } of segmentFiles(s)) {
        const f = fileIndex(file.key, file.size)
        if (held[f] === 1) continue
        held[f] = 1
        liveOwner[f] = s.collectionId
        bytes += file.size
      }
      liveBytes.set(s.collectionId, bytes)
    }
    const records: SnapshotRecord[] = []
    for await (const [, value] of this.#meta.iterate(prefixRange(keys.snapshotPrefix), { signal })) {
      const r = JSON.parse(value) as SnapshotRecord
      if (r.state === 'committed' && r.list !== undefined) records.push(r)
    }
    records.sort((a, b) => a.createdAt - b.createdAt || a.id - b.id)
    const manifestOf = new Map<number, Map<number, number>>() // owner snapshot ID → segment ID → manifest index
    const manifestKeys: string[] = []
    const manifestCollection: number[] = []
    const listedBy: number[] = []
    const snapshots: Accounting['snapshots'] = []
    const usedLists = new Map<string, ListColumns>()
    for (const r of records) {
      const list = await this.#listColumns(r, { signal })
      usedLists.set(`${r.list!.key}#${r.list!.hash}`, list)
      const manifests = new Uint32Array(list.count)
      for (let i = 0; i < list.count; i++) {
        const owner = list.owners[i]
        let bySegment = manifestOf.get(owner)
        if (bySegment === undefined) manifestOf.set(owner, (bySegment = new Map()))
        let m = bySegment.get(list.segmentIds[i])
        if (m === undefined) {
          m = manifestKeys.length
          bySegment.set(list.segmentIds[i], m)
          manifestKeys.push(layout.snapshotManifest(r.collectionId, owner, list.segmentIds[i]))
          manifestCollection.push(r.collectionId)
          listedBy.push(0)
        }
        listedBy[m]++
        manifests[i] = m
      }
      snapshots.push({ record: r, manifests, segmentIds: list.segmentIds })
    }
    this.#listCache = usedLists
    // Collected into this call's own map: a concurrent call may replace the cache meanwhile.
    const used = new Map<string, { keys: string[]; sizes: number[] }>()
    const missing: string[] = []
    for (const key of manifestKeys) {
      const hit = this.#manifests.get(key)
      if (hit === undefined) missing.push(key)
      else used.set(key, hit)
    }
    await forEachLimit(missing, READ_CONCURRENCY, async (key) => {
      used.set(key, await this.#manifest(key, { signal }))
    }, signal)
    // Keep exactly the manifests committed snapshots list now (as GC's references do).
    this.#manifests = used
    const manifests: Accounting['manifests'] = manifestKeys.map((key, m) => {
      const stored = used.get(key)!
      const files = new Uint32Array(stored.keys.length)
      for (let j = 0; j < stored.keys.length; j++) files[j] = fileIndex(stored.keys[j], stored.sizes[j])
      return { files, collectionId: manifestCollection[m], listedBy: listedBy[m] }
    })
    const refs = new Uint32Array(sizes.length)
    const refCollection = new Float64Array(sizes.length).fill(Number.NaN)
    for (const m of manifests) {
      for (const f of m.files) {
        refs[f] += m.listedBy
        const c = refCollection[f]
        if (Number.isNaN(c)) refCollection[f] = m.collectionId
        else if (c !== m.collectionId) refCollection[f] = -1
      }
    }
    for (const { record, manifests: listed } of snapshots) {
      if (!inUse.has(record.id)) continue
      for (const m of listed) for (const f of manifests[m].files) held[f] = 1
    }
    return { snapshots, manifests, sizes, held: Uint8Array.from(held), refs, refCollection, liveBytes, liveOwner, fileOf: index }
  }

  /** The report (see `SnapshotManager.spaceReport`). */
  async report(options: SpaceReportOptions = {}): Promise<SpaceReport> {
    const { collectionName, signal } = options
    const a = await this.#account({ signal })
    const collections = new Map<number, string>()
    for (const c of await this.#catalog.listCollections({ signal })) collections.set(c.id, c.name)
    // A dropped collection is reported under the name its snapshots recorded.
    for (const { record } of a.snapshots) if (!collections.has(record.collectionId)) collections.set(record.collectionId, record.collectionName)
    const included = (id: number): boolean => collectionName === undefined || collections.get(id) === collectionName
    const report: SpaceReport = { snapshots: [], collections: [], totalBytes: 0 }

    // Per manifest: its bytes, and the bytes of its files that only one snapshot references
    // and nothing holds (if a snapshot lists the manifest, those are exclusive to it).
    const manifestBytes = new Float64Array(a.manifests.length)
    a.manifests.forEach((m, i) => {
      for (const f of m.files) manifestBytes[i] += a.sizes[f]
    })
    const manifestExclusive = manifestExclusiveBytes(a)
    const previous = new Map<number, Accounting['snapshots'][number]>()
    const inPrevious = new Uint8Array(a.manifests.length)
    for (const s of a.snapshots) {
      let referencedBytes = 0
      let exclusiveBytes = 0
      for (const m of s.manifests) {
        referencedBytes += manifestBytes[m]
        exclusiveBytes += manifestExclusive[m]
      }
      const writtenBytes = this.#written(a, s, previous.get(s.record.collectionId), manifestBytes, inPrevious)
      previous.set(s.record.collectionId, s)
      if (included(s.record.collectionId)) {
        report.snapshots.push({ name: s.record.name, collectionName: collections.get(s.record.collectionId) ?? s.record.collectionName, referencedBytes, exclusiveBytes, writtenBytes })
      }
    }
    // What dropping all of a collection's snapshots frees: files only its manifests hold, that nothing holds.
    const snapshotOnly = new Map<number, number>()
    for (let f = 0; f < a.sizes.length; f++) {
      const c = a.refCollection[f]
      if (a.refs[f] === 0 || a.held[f] === 1 || Number.isNaN(c) || c === -1) continue
      snapshotOnly.set(c, (snapshotOnly.get(c) ?? 0) + a.sizes[f])
    }
    for (const [id, name] of [...collections].sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0))) {
      if (!included(id)) continue
      report.collections.push({ name, liveBytes: a.liveBytes.get(id) ?? 0, snapshotOnlyBytes: snapshotOnly.get(id) ?? 0 })
    }
    if (collectionName !== undefined && report.collections.length === 0) throw new SnapshotError('NOT_FOUND', `collection not found: ${collectionName}`)
    // totalBytes: every file a reported collection's live segments or snapshots hold, once.
    for (let f = 0; f < a.sizes.length; f++) {
      const live = a.liveOwner[f]
      const snap = a.refCollection[f]
      const counted = (!Number.isNaN(live) && included(live)) || (a.refs[f] > 0 && (snap === -1 ? collectionName === undefined : included(snap)))
      if (counted) report.totalBytes += a.sizes[f]
    }
    return report
  }

  /**
   * Bytes of `s` not in `prior` (the collection's previous snapshot): a manifest both list
   * adds nothing; another capture of a segment `prior` has adds the files it lacks (a file
   * belongs to one segment, so only that segment's manifest in `prior` can hold it).
   */
  #written(a: Accounting, s: Accounting['snapshots'][number], prior: Accounting['snapshots'][number] | undefined, manifestBytes: Float64Array, inPrevious: Uint8Array): number {
    if (prior === undefined) {
      let total = 0
      for (const m of s.manifests) total += manifestBytes[m]
      return total
    }
    for (const m of prior.manifests) inPrevious[m] = 1
    const priorBySegment = new Map<number, number>()
    let written = 0
    for (let i = 0; i < s.manifests.length; i++) {
      const m = s.manifests[i]
      if (inPrevious[m] === 1) continue
      if (priorBySegment.size === 0) for (let j = 0; j < prior.manifests.length; j++) priorBySegment.set(prior.segmentIds[j], prior.manifests[j])
      const pm = priorBySegment.get(s.segmentIds[i])
      const had = pm === undefined ? undefined : new Set(a.manifests[pm].files)
      for (const f of a.manifests[m].files) if (had === undefined || !had.has(f)) written += a.sizes[f]
    }
    for (const m of prior.manifests) inPrevious[m] = 0
    return written
  }

  /** Committed snapshots whose files include `key` (for `explainObject`). */
  async referencing(key: string, options: AbortOptions = {}): Promise<{ id: number; name: string }[]> {
    const a = await this.#account(options)
    const f = a.fileOf.get(key)
    if (f === undefined || a.refs[f] === 0) return []
    const holding = new Set<number>()
    a.manifests.forEach((m, i) => {
      if (m.files.includes(f)) holding.add(i)
    })
    return a.snapshots.filter((s) => s.manifests.some((m) => holding.has(m))).map((s) => ({ id: s.record.id, name: s.record.name }))
  }

  /** What dropping exactly the named snapshots would free (see `SnapshotManager.reclaimableBytes`). */
  async reclaimable(names: readonly string[], options: AbortOptions = {}): Promise<number> {
    const a = await this.#account(options)
    return this.#freed(a, new Map(a.snapshots.map((s) => [s.record.name, s])), names)
  }

  /**
   * A prune's figures from one accounting of the store as it is now: what dropping each
   * named snapshot alone frees (names no longer committed are left out), and
   * `freed(subset)`, what dropping a subset of them together frees (a prune asks once its
   * drops are done, for those that succeeded).
   */
  async dropFigures(names: readonly string[], options: AbortOptions = {}): Promise<{ each: Map<string, number>; freed(subset: readonly string[]): number }> {
    const a = await this.#account(options)
    const byName = new Map(a.snapshots.map((s) => [s.record.name, s]))
    const exclusive = manifestExclusiveBytes(a)
    const each = new Map<string, number>()
    for (const name of names) {
      const s = byName.get(name)
      if (s === undefined) continue // dropped since the caller listed it
      let bytes = 0
      for (const m of s.manifests) bytes += exclusive[m]
      each.set(name, bytes)
    }
    return { each, freed: (subset) => this.#freed(a, byName, subset.filter((name) => byName.has(name))) }
  }

  #freed(a: Accounting, byName: ReadonlyMap<string, Accounting['snapshots'][number]>, names: readonly string[]): number {
    const set = new Set<string>(names)
    for (const name of set) if (!byName.has(name)) throw new SnapshotError('NOT_FOUND', `snapshot not found: ${name}`)
    // Per manifest, how many snapshots of the set list it; per file, how many of the set reference it.
    const listedInSet = new Uint32Array(a.manifests.length)
    for (const name of set) for (const m of byName.get(name)!.manifests) listedInSet[m]++
    const inSet = new Uint32Array(a.sizes.length)
    a.manifests.forEach((m, i) => {
      if (listedInSet[i] > 0) for (const f of m.files) inSet[f] += listedInSet[i]
    })
    let bytes = 0
    for (let f = 0; f < inSet.length; f++) if (inSet[f] > 0 && inSet[f] === a.refs[f] && a.held[f] === 0) bytes += a.sizes[f]
    return bytes
  }
}
