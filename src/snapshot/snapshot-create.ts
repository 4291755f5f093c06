import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { encodeManifest, manifestFileSize } from '../format/manifest-codec.js'
import { captureSegment, capturedBytes, readCapture } from '../format/segment-capture.js'
import type { CollectionInfo, SegmentInfo } from '../meta/catalog-types.js'
import { expectString } from '../meta/catalog-validate.js'
import { idFromKey, keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import { dropsBetween, readCollectionByName, readDropEpoch, readIndexRecords, toIndexInfo, type IndexRecord } from '../meta/records.js'
import type { MetaTxn } from '../meta/transaction.js'
import { layout } from '../storage/layout.js'
import type { ListReader } from './list-reader.js'
import { ManifestWrites, type ManifestSource, type ManifestWrite } from './manifest-writes.js'
import { encodeMetadata, METADATA_FORMAT_VERSION, type SnapshotMetadata } from './metadata-json.js'
import { encodeList, listKey, type ListEntry, type ListRef, type SnapshotList, type SnapshotListHeader } from './snapshot-list.js'
import { MAX_DESCRIPTION_LENGTH, toSnapshotInfo, validateSnapshotName, type SnapshotRecord } from './snapshot-record.js'
import type { CreateSnapshotRequest, SnapshotInfo } from './snapshot-types.js'

/**
 * Snapshot creation (SPEC sections 5 and 11): a constant number of small MetaStore
 * batches whatever the segment count.
 *
 * - Phase 0 (one small batch): reserve the name and ID with a `pending` record that has
 *   no list yet. From here on the snapshot's own object keys are owned by a record, so a
 *   crash leaves nothing that recovery cannot find.
 * - Phase 1 (one transaction, the pin): read the collection's drop epoch, then scan its
 *   segment index (one range read of the captures the catalog stored), write the list
 *   object, and commit the record with the list's key and hash in one small batch that
 *   expects the drop epoch unchanged. See "Pin invariant" below.
 * - Phase 2: write the manifests this snapshot owns and the metadata JSON.
 * - Phase 3 (one small batch): `pending` → `committed`.
 *
 * **Pin invariant.** A snapshot in any state pins the segment and build IDs of its list
 * from the batch that commits the list. Every catalog change that drops a segment,
 * partition, collection or index build, or replaces a build, bumps the collection's drop
 * epoch and logs what it dropped in the same batch (`bumpDropEpoch`). Phase 1 reads the
 * epoch before it scans and its batch expects the epoch it read. If the epoch moved,
 * the transaction runs again: it reads the drop log since its scan and scans again only
 * if a drop concerns a segment it captured (flushes, new segments and deltalogs never
 * bump the epoch, so they never make it scan again). So no segment or build in a committed
 * list was dropped before the list was pinned, and GC, which reads the snapshot records
 * after it read the catalog, sees the pin of any unit it found dropped.
 *
 * **Reuse invariant.** A manifest of an unchanged segment is reused from the newest
 * committed snapshot of the collection (its list names the owner). Phase 1 reads and bumps
 * the collection's snapshot-set version, and a drop marks its snapshot `deleting` in a
 * batch that also reads and bumps it: a create never commits a reuse of a snapshot that a
 * drop has begun to delete, and a drop sees every snapshot that reused its manifests
 * (see `snapshot-drop.ts`).
 */

/** Manifest writes in flight during create. */
export const MANIFEST_WRITE_CONCURRENCY = 16

/** Segment records read concurrently when a capture cannot be used (files of a dropped index). */
const READ_CONCURRENCY = 64

/** Segments phase 1 plans between turns of the event loop while manifests are being written. */
const YIELD_EVERY = 32

/** Committed snapshots looked at (newest ID first) for manifests to reuse. */
const REUSE_CANDIDATES = 4

/** Removes a half-made snapshot that is still `pending` and still this manager's; see `purgeSnapshot`. */
export type Purge = (snapshotId: number) => Promise<void>

function validateRequest(request: CreateSnapshotRequest): void {
  if (typeof request !== 'object' || request === null) throw new TypeError(`Expected \`request\` to be an object, got \`${request === null ? 'null' : typeof request}\``)
  expectString(request.collectionName, 'collectionName')
  if (request.collectionName === '') throw new SnapshotError('INVALID_ARGUMENT', '`collectionName` must be a non-empty string')
  validateSnapshotName(request.snapshotName, 'snapshotName')
  if (request.description !== undefined && typeof request.description !== 'string') {
    throw new TypeError(`Expected \`description\` to be a string, got \`${typeof request.description}\``)
  }
  if ((request.description?.length ?? 0) > MAX_DESCRIPTION_LENGTH) {
    throw new SnapshotError('INVALID_ARGUMENT', `\`description\` is ${request.description?.length} characters long; at most ${MAX_DESCRIPTION_LENGTH} are allowed`)
  }
}

/** Throws unless the collection can be snapshotted now. */
function assertSnapshottable(collection: CollectionInfo | undefined, collectionName: string): asserts collection is CollectionInfo {
  if (collection === undefined) throw new SnapshotError('NOT_FOUND', `collection not found: ${collectionName}`)
  if (collection.state === 'restoring') {
    throw new SnapshotError('FAILED_PRECONDITION', `collection ${collectionName} is being restored into; snapshot it once the restore completes`)
  }
}

/** What phase 0 reserved. */
interface Reservation {
  id: number
  collectionId: number
}

/** Phase 0, one small batch: checks the request, allocates the ID, writes the `pending` record and the name key. */
async function reserve(tx: MetaTxn, request: CreateSnapshotRequest, now: number, owner: string | undefined): Promise<Reservation> {
  const { collectionName, snapshotName } = request
  const collection = await readCollectionByName(tx, collectionName)
  assertSnapshottable(collection, collectionName)
  if ((await tx.get(keys.snapshotName(snapshotName))) !== undefined) {
    throw new SnapshotError('ALREADY_EXISTS', `snapshot already exists: ${snapshotName}`)
  }
  const id = await tx.allocIds(1)
  const record: SnapshotRecord = {
    id,
    name: snapshotName,
    collectionId: collection.id,
    collectionName: collection.name,
    description: request.description ?? '',
    createdAt: now,
    state: 'pending',
    segmentCount: 0,
    rowCount: 0,
    sizeBytes: 0,
    metadataKey: layout.snapshotMetadata(collection.id, id),
    metadataSize: 0,
  }
  if (owner !== undefined) record.owner = owner
  tx.putJson(keys.snapshot(id), record)
  tx.put(keys.snapshotName(snapshotName), String(id))
  tx.put(keys.collectionSnapshot(collection.id, id), '')
  return { id, collectionId: collection.id }
}

/** A captured segment, before the manifest to list for it is decided. */
interface Captured {
  segmentId: number
  hash: string
  manifestSize: number
  rows: number
  bytes: number
  builds: number[]
  /** How to write the manifest, when this snapshot writes it. */
  source: ManifestSource
}

/** What phase 1 keeps between runs of its transaction (a run after a conflict reuses a scan that is still valid). */
interface ScanState {
  epoch: number
  /** The live partitions and index definitions the scan used. */
  collection: CollectionInfo
  indexes: IndexRecord[]
  segments: Captured[]
  captured: Set<number>
}

/**
 * Reads the collection's segment index in one range read and captures its flushed
 * segments of live partitions: from the stored capture when every index it includes is
 * live, else (files of a dropped index) from the segment record, encoded without them.
 */
async function scan(tx: MetaTxn, collection: CollectionInfo, liveIndexIds: ReadonlySet<number>, onCapture: (c: Captured) => Promise<void>): Promise<Captured[]> {
  const livePartitions = new Set(collection.partitions.map((p) => p.id))
  const out: (Captured | undefined)[] = []
  /** Segments whose record must be read: position in `out`, ID. */
  const fromRecord: [number, number][] = []
  for await (const [key, value] of tx.iterate(prefixRange(keys.collectionSegmentPrefix(collection.id)))) {
    const segmentId = idFromKey(key)
    const capture = readCapture(value)
    if (capture === undefined) throw new SnapshotError('CORRUPT', `the catalog entry of segment ${segmentId} (${key}) is unreadable`, { details: { key } })
    if (capture.flushed === undefined || !livePartitions.has(capture.partitionId)) continue
    const f = capture.flushed
    if (f.indexIds.every((ix) => liveIndexIds.has(ix))) {
      const c: Captured = { segmentId, hash: f.manifest.hash, manifestSize: manifestFileSize(f.manifest), rows: f.rows, bytes: f.bytes, builds: f.builds, source: { body: f.manifest } }
      out.push(c)
      await onCapture(c)
    } else {
      fromRecord.push([out.length, segmentId])
      out.push(undefined)
    }
  }
  if (fromRecord.length > 0) {
    const values = await tx.getMany(fromRecord.map(([, id]) => keys.segment(id)), { concurrency: READ_CONCURRENCY })
    fromRecord.forEach(([at, segmentId], i) => {
      const value = values[i]
      if (value === undefined) throw new SnapshotError('CORRUPT', `segment ${segmentId} is in the collection's index but has no record`)
      const m = captureSegment(JSON.parse(value) as SegmentInfo, liveIndexIds)
      const builds: number[] = []
      const bytes = capturedBytes(m, builds)
      const encoded = encodeManifest(m)
      out[at] = { segmentId, hash: encoded.hash, manifestSize: encoded.bytes.byteLength, rows: m.numRows, bytes, builds, source: { encoded } }
    })
    for (const [at] of fromRecord) await onCapture(out[at] as Captured)
  }
  return out as Captured[]
}

/** The newest committed snapshot of the collection (among the last few by ID) and its list, for reuse. */
async function priorList(tx: MetaTxn, lists: ListReader, collectionId: number): Promise<SnapshotList | undefined> {
  const range = { ...prefixRange(keys.collectionSnapshotPrefix(collectionId)), reverse: true, limit: REUSE_CANDIDATES }
  const ids: number[] = []
  for await (const [key] of tx.iterate(range)) ids.push(idFromKey(key))
  let newest: SnapshotRecord | undefined
  for (const id of ids) {
    const r = await tx.getJson<SnapshotRecord>(keys.snapshot(id))
    if (r?.state === 'committed' && r.list !== undefined && (newest === undefined || r.createdAt > newest.createdAt)) newest = r
  }
  return newest?.list === undefined ? undefined : lists.read(newest.list, { signal: tx.signal })
}

/** What phase 1 decided. */
interface CreatePlan {
  record: SnapshotRecord
  /** Manifests this snapshot writes itself (those not handed to the writer during the scan). */
  writes: ManifestWrite[]
  metadata: Uint8Array
}

/** Phase 1's view of the run: the state kept between runs, and where manifests go. */
interface PlanRun {
  ctx: ManagerContext
  lists: ListReader
  reserved: Reservation
  request: CreateSnapshotRequest
  /** Set on stores whose transactions run exactly once: manifests are written as the scan goes. */
  writer: ManifestWrites | undefined
  scan?: ScanState
  /** Content hash of the list object as last written. */
  writtenList?: string
}

/**
 * Phase 1, inside one transaction (see the pin and reuse invariants above). Expectations
 * (on stores with shared batches): the record, the collection's name and record, its drop
 * epoch, its snapshot-set version and the reuse candidates' records. Writes: the record and
 * the set version. Constant whatever the segment count.
 */
async function plan(tx: MetaTxn, run: PlanRun): Promise<CreatePlan> {
  const { ctx, reserved, request } = run
  const { id } = reserved
  const pending = await tx.getJson<SnapshotRecord>(keys.snapshot(id))
  if (pending?.state !== 'pending' || pending.list !== undefined) {
    throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${request.snapshotName} was removed while it was being created`)
  }
  const found = await readCollectionByName(tx, request.collectionName)
  // Dropped (and perhaps created again) since phase 0: the reserved keys name the old collection.
  const collection = found?.id === reserved.collectionId ? found : undefined
  assertSnapshottable(collection, request.collectionName)
  // Read before the scan: a drop after this read fails the commit.
  const epoch = await readDropEpoch(tx, collection.id)
  if (run.scan !== undefined && run.scan.epoch !== epoch) {
    const drops = await dropsBetween(tx, collection.id, run.scan.epoch, epoch)
    const stale = drops === 'all' || [...drops].some((s) => run.scan?.captured.has(s) === true)
    run.scan = stale ? undefined : { ...run.scan, epoch }
  }
  const setVersion = Number((await tx.get(keys.snapshotSetVersion(collection.id))) ?? '0')
  const prior = await priorList(tx, run.lists, collection.id)
  const earlier = new Map<number, number>()
  if (prior !== undefined) for (let i = 0; i < prior.count; i++) earlier.set(prior.segmentIds[i], i)
  /** The owner of the manifest to list for `c`: the prior snapshot's when it holds the same manifest. */
  const ownerOf = (c: Captured): number => {
    const at = earlier.get(c.segmentId)
    return prior !== undefined && at !== undefined && prior.hashes[at] === c.hash ? prior.owners[at] : id
  }
  const writeOf = (c: Captured): ManifestWrite => ({ key: layout.snapshotManifest(collection.id, id, c.segmentId), hash: c.hash, ...c.source })
  if (run.scan === undefined) {
    const indexes = (await readIndexRecords(tx, collection.id)).filter((r) => r.droppedAt === undefined)
    const liveIndexIds = new Set(indexes.map((r) => r.id))
    let sinceYield = 0
    const { writer } = run
    // With a writer (the transaction runs once), each manifest is written as soon as its segment is read.
    const onCapture = async (c: Captured): Promise<void> => {
      if (writer === undefined) return
      if (ownerOf(c) === id) writer.add(writeOf(c))
      // Let finished writes start the next ones (their callbacks need the event loop).
      if (++sinceYield >= YIELD_EVERY) {
        sinceYield = 0
        await yieldToEventLoop()
      }
    }
    const segments = await scan(tx, collection, liveIndexIds, onCapture)
    run.scan = { epoch, collection, indexes, segments, captured: new Set(segments.map((s) => s.segmentId)) }
  }

  const entries: ListEntry[] = []
  const writes: ManifestWrite[] = []
  let rowCount = 0
  let sizeBytes = 0
  for (const c of run.scan.segments) {
    const owner = ownerOf(c)
    entries.push({ segmentId: c.segmentId, manifestOwner: owner, manifestHash: c.hash, manifestSize: c.manifestSize, rows: c.rows, bytes: c.bytes, builds: c.builds })
    if (owner === id && run.writer === undefined) writes.push(writeOf(c))
    rowCount += c.rows
    sizeBytes += c.bytes
  }
  const { collection: captured, indexes } = run.scan
  const header: SnapshotListHeader = {
    vecsnapList: 1,
    snapshotId: id,
    snapshotName: pending.name,
    collection: {
      id: captured.id,
      name: captured.name,
      schema: captured.schema,
      shardsNum: captured.shardsNum,
      channels: captured.channels,
      partitions: captured.partitions,
      properties: captured.properties,
      createdAt: captured.createdAt,
    },
    indexes: indexes.map(toIndexInfo),
    segmentCount: entries.length,
    rowCount,
    sizeBytes,
  }
  const list = encodeList(header, entries)
  const ref: ListRef = { key: listKey(collection.id, id), hash: list.hash, size: list.bytes.byteLength }
  // The list exists before the batch that names it (a run after a conflict may rewrite it; the record names the content by hash).
  if (run.writtenList !== list.hash) {
    await ctx.objects.put(ref.key, list.bytes, { signal: tx.signal })
    run.writtenList = list.hash
  }
  const record: SnapshotRecord = { ...pending, segmentCount: entries.length, rowCount, sizeBytes, list: ref }
  tx.putJson(keys.snapshot(id), record)
  tx.put(keys.snapshotSetVersion(collection.id), String(setVersion + 1))
  const metadata = encodeMetadata(buildMetadata(record, header, entries))
  return { record, writes, metadata }
}

function buildMetadata(r: SnapshotRecord, h: SnapshotListHeader, entries: readonly ListEntry[]): SnapshotMetadata {
  return {
    formatVersion: METADATA_FORMAT_VERSION,
    snapshot: {
      id: r.id,
      name: r.name,
      description: r.description,
      collectionId: r.collectionId,
      collectionName: r.collectionName,
      createdAt: r.createdAt,
      segmentCount: r.segmentCount,
      rowCount: r.rowCount,
      sizeBytes: r.sizeBytes,
    },
    collection: h.collection,
    indexes: h.indexes,
    segmentIds: entries.map((e) => e.segmentId),
    manifests: entries.map((e) => layout.snapshotManifest(r.collectionId, e.manifestOwner, e.segmentId)),
  }
}

/** Phase 3, one small batch: `pending` → `committed`, if the record is still the one phase 1 pinned. */
async function commit(tx: MetaTxn, p: CreatePlan): Promise<SnapshotRecord> {
  const current = await tx.getJson<SnapshotRecord>(keys.snapshot(p.record.id))
  if (current?.state !== 'pending' || current.list?.hash !== p.record.list?.hash) {
    throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${p.record.name} was removed while it was being created`)
  }
  const committed: SnapshotRecord = { ...current, state: 'committed', metadataSize: p.metadata.byteLength }
  tx.putJson(keys.snapshot(committed.id), committed)
  return committed
}

/**
 * Creates a snapshot (phases 0–3 above). On stores whose transactions run exactly once
 * (memory, LevelDB), the manifest writes start during the scan, so a create costs about the
 * larger of its metadata work and its writes. On failure after phase 0 the snapshot is
 * removed if it is still `pending` and still this manager's (a commit that landed but
 * reported an error is left committed); if that cleanup fails too, recovery finishes it.
 */
export async function createSnapshot(ctx: ManagerContext, lists: ListReader, purge: Purge, request: CreateSnapshotRequest): Promise<SnapshotInfo> {
  validateRequest(request)
  const { signal } = request
  throwIfAborted(signal)
  const reserved = await ctx.transactor.run((tx) => reserve(tx, request, ctx.now(), ctx.instanceId), { signal })
  const writer = new ManifestWrites(ctx.objects, MANIFEST_WRITE_CONCURRENCY, signal)
  // A transaction that may run again (a conflict on a shared store) writes manifests only after it committed.
  const early = !ctx.transactor.store.capabilities.sharedConditionalBatch
  const run: PlanRun = { ctx, lists, reserved, request, writer: early ? writer : undefined }
  let committed: SnapshotRecord
  try {
    const p = await ctx.transactor.run((tx) => plan(tx, run), { signal })
    run.scan = undefined
    for (const w of p.writes) writer.add(w)
    await writer.finish()
    throwIfAborted(signal)
    await ctx.objects.put(p.record.metadataKey, p.metadata, { signal })
    throwIfAborted(signal)
    committed = await ctx.transactor.run((tx) => commit(tx, p), { signal })
  } catch (err) {
    // Nothing may land after the cleanup deleted the snapshot's objects.
    await writer.stop()
    await purge(reserved.id).catch(() => undefined)
    throw err
  }
  const info = toSnapshotInfo(committed)
  ctx.events.emit('snapshotCreated', info)
  return info
}
