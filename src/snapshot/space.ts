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

/** Manifests read at once. */
const READ_CONCURRENCY = 8

/** One accounting pass: every file once, with its size and who references it. */
interface Accounting {
  snapshots: { record: SnapshotRecord; files: Uint32Array }[]
  sizes: number[]
  held: Uint8Array
  /** Snapshots (committed) referencing each file. */
  refs: Uint16Array
  /** Collection ID of the first snapshot referencing each file; -1 when snapshots of several collections do. */
  refCollection: Float64Array
  /** Live bytes per collection ID. */
  liveBytes: Map<number, number>
  /** Collection ID of the live segment naming each file; NaN when none does. */
  liveOwner: number[]
}

/** Computes space reports for a manager. @internal */
export class SpaceAccountant {
  readonly #meta: MetaStore
  readonly #objects: ObjectStore
  readonly #catalog: Catalog
  readonly #lists: ListReader
  #manifests = new Map<string, { keys: string[]; sizes: number[] }>()
  /** Manifests read from the store (not from the cache), for tests and benchmarks. */
  readonly reads = { manifests: 0 }

  constructor(deps: { meta: MetaStore; objects: ObjectStore; catalog: Catalog; lists: ListReader }) {
    this.#meta = deps.meta
    this.#objects = deps.objects
    this.#catalog = deps.catalog
    this.#lists = deps.lists
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

  async #account(options: AbortOptions): Promise<Accounting> {
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
    // Each distinct manifest once: a snapshot lists (owner, segment) pairs, and most of a
    // collection's snapshots share most of their manifests.
    const manifestOf = new Map<number, Map<number, number>>() // owner snapshot ID → segment ID → manifest index
    const manifestKeys: string[] = []
    const listed: { record: SnapshotRecord; manifests: Uint32Array }[] = []
    for (const r of records) {
      const list = await this.#lists.read(r.list!, { signal })
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
        }
        manifests[i] = m
      }
      listed.push({ record: r, manifests })
    }
    const missing = manifestKeys.filter((key) => !this.#manifests.has(key))
    await forEachLimit(missing, READ_CONCURRENCY, async (key) => {
      await this.#manifest(key, { signal })
    }, signal)
    // Keep exactly the manifests committed snapshots list now (as GC's references do).
    const used = new Map(manifestKeys.map((key) => [key, this.#manifests.get(key)!] as const))
    this.#manifests = used
    const manifestFiles = manifestKeys.map((key) => {
      const m = used.get(key)!
      const out = new Uint32Array(m.keys.length)
      for (let j = 0; j < m.keys.length; j++) out[j] = fileIndex(m.keys[j], m.sizes[j])
      return out
    })
    const stamp = new Uint32Array(sizes.length)
    const snapshots: Accounting['snapshots'] = listed.map(({ record, manifests }, n) => {
      const mine: number[] = []
      for (const m of manifests) {
        for (const f of manifestFiles[m]) {
          if (stamp[f] === n + 1) continue
          stamp[f] = n + 1
          mine.push(f)
        }
      }
      const files = Uint32Array.from(mine)
      if (inUse.has(record.id)) for (const f of files) held[f] = 1
      return { record, files }
    })
    const refs = new Uint16Array(sizes.length)
    const refCollection = new Float64Array(sizes.length).fill(Number.NaN)
    for (const { record, files } of snapshots) {
      for (const f of files) {
        if (refs[f] < 0xffff) refs[f]++
        const c = refCollection[f]
        if (Number.isNaN(c)) refCollection[f] = record.collectionId
        else if (c !== record.collectionId) refCollection[f] = -1
      }
    }
    return { snapshots, sizes, held: Uint8Array.from(held), refs, refCollection, liveBytes, liveOwner }
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
    const previous = new Map<number, Uint32Array>()
    const mark = new Uint8Array(a.sizes.length)
    const snapshotOnly = new Map<number, number>()
    const counted = new Uint8Array(a.sizes.length)
    for (const { record, files } of a.snapshots) {
      let referencedBytes = 0
      let exclusiveBytes = 0
      let writtenBytes = 0
      const prior = previous.get(record.collectionId)
      if (prior !== undefined) for (const f of prior) mark[f] = 1
      for (const f of files) {
        const size = a.sizes[f]
        referencedBytes += size
        if (a.refs[f] === 1 && a.held[f] === 0) exclusiveBytes += size
        if (mark[f] === 0) writtenBytes += size
        if (a.held[f] === 0 && a.refCollection[f] === record.collectionId && counted[f] === 0) {
          counted[f] = 1
          snapshotOnly.set(record.collectionId, (snapshotOnly.get(record.collectionId) ?? 0) + size)
        }
      }
      if (prior !== undefined) for (const f of prior) mark[f] = 0
      previous.set(record.collectionId, files)
      if (included(record.collectionId)) {
        report.snapshots.push({ name: record.name, collectionName: collections.get(record.collectionId) ?? record.collectionName, referencedBytes, exclusiveBytes, writtenBytes })
      }
    }
    for (const [id, name] of [...collections].sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0))) {
      if (!included(id)) continue
      report.collections.push({ name, liveBytes: a.liveBytes.get(id) ?? 0, snapshotOnlyBytes: snapshotOnly.get(id) ?? 0 })
    }
    if (collectionName !== undefined && report.collections.length === 0) throw new SnapshotError('NOT_FOUND', `collection not found: ${collectionName}`)
    // totalBytes: every file a reported collection's live segments or snapshots hold, once.
    const seen = new Uint8Array(a.sizes.length)
    for (let f = 0; f < a.sizes.length; f++) {
      if (Number.isNaN(a.liveOwner[f]) || !included(a.liveOwner[f])) continue
      seen[f] = 1
      report.totalBytes += a.sizes[f]
    }
    for (const { record, files } of a.snapshots) {
      if (!included(record.collectionId)) continue
      for (const f of files) {
        if (seen[f] === 1) continue
        seen[f] = 1
        report.totalBytes += a.sizes[f]
      }
    }
    return report
  }

  /** What dropping exactly the named snapshots would free (see `SnapshotManager.reclaimableBytes`). */
  async reclaimable(names: readonly string[], options: AbortOptions = {}): Promise<number> {
    const a = await this.#account(options)
    const byName = new Map(a.snapshots.map((s) => [s.record.name, s]))
    const set = new Set<string>(names)
    for (const name of set) if (!byName.has(name)) throw new SnapshotError('NOT_FOUND', `snapshot not found: ${name}`)
    const inSet = new Uint16Array(a.sizes.length)
    for (const name of set) for (const f of byName.get(name)!.files) inSet[f]++
    let bytes = 0
    for (let f = 0; f < inSet.length; f++) if (inSet[f] > 0 && inSet[f] === a.refs[f] && a.held[f] === 0) bytes += a.sizes[f]
    return bytes
  }
}
