import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import type { CollectionInfo } from '../catalog-types.js'
import { expectString } from '../meta/catalog-validate.js'
import { keys } from '../meta/keys.js'
import { dropsBetween, readCollectionByName, readDropEpoch, readIndexRecords, toIndexInfo, type IndexRecord } from '../meta/records.js'
import { MetaTxn } from '../meta/transaction.js'
import { layout } from '../storage/layout.js'
import type { ListReader } from './list-reader.js'
import { ownerOf, readPrior, type Prior } from './manifest-reuse.js'
import { ManifestWrites } from './manifest-writes.js'
import { encodeMetadata, METADATA_FORMAT_VERSION, type SnapshotMetadata } from './metadata-json.js'
import { scanSegments, type Captured } from './segment-scan.js'
import { encodeList, listKey, type ListEntry, type ListRef, type SnapshotListHeader } from './snapshot-list.js'
import { MAX_DESCRIPTION_LENGTH, toSnapshotInfo, validateSnapshotName, type SnapshotRecord } from './snapshot-record.js'
import type { CreateSnapshotRequest, SnapshotInfo } from './snapshot-types.js'

/**
 * Snapshot creation (SPEC sections 5 and 11): a constant number of small MetaStore
 * batches whatever the segment count.
 *
 * - Phase 0 (one small batch): reserve the name and ID with a `pending` record that has
 *   no list yet. From here on the snapshot's own object keys are owned by a record, so a
 *   crash leaves nothing that recovery cannot find.
 * - Phase 1 (the pin): read the collection's drop epoch, then scan its segment index (one
 *   range read of the captures the catalog stored, outside the transaction lock), write
 *   the list object, and commit the record with the list's key and hash in one small
 *   batch that checks the drop epoch. See "Pin invariant" below. The manifests this
 *   snapshot owns are written from the scan on, into its own directory.
 * - Phase 2: finish the manifest writes; write the metadata JSON.
 * - Phase 3 (one small batch): `pending` → `committed`.
 *
 * **Pin invariant.** A snapshot in any state pins the segment and build IDs of its list
 * from the batch that commits the list. Every catalog change that drops a segment,
 * partition, collection or index build, or replaces a build, bumps the collection's drop
 * epoch and logs what it dropped in the same batch (`bumpDropEpoch`). Phase 1 reads the
 * epoch before it scans; its pin transaction reads the epoch again and, if it moved, the
 * drop log since the scan, and scans again only if a drop concerns a segment it captured
 * (flushes, new segments and deltalogs never bump the epoch, so they never make it scan
 * again). The pin's batch expects the epoch it read (on etcd a compare; on one process
 * the transaction lock). So no segment or build in a committed
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

/** Segments phase 1 plans between turns of the event loop while manifests are being written. */
const YIELD_EVERY = 32

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
async function reserve(tx: MetaTxn, request: CreateSnapshotRequest, now: number, owner: string | undefined, schedule: string | undefined): Promise<Reservation> {
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
  if (schedule !== undefined) record.schedule = schedule
  tx.putJson(keys.snapshot(id), record)
  tx.put(keys.snapshotName(snapshotName), String(id))
  tx.put(keys.collectionSnapshot(collection.id, id), '')
  return { id, collectionId: collection.id }
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

/** What phase 1 decided. */
interface CreatePlan {
  record: SnapshotRecord
  metadata: Uint8Array
}

/** Phase 1's state, kept across its attempts. */
interface PlanRun {
  ctx: ManagerContext
  lists: ListReader
  reserved: Reservation
  request: CreateSnapshotRequest
  writer: ManifestWrites
  scan?: ScanState
  /** Manifests handed to the writer, by key: the content hash each was queued with. */
  queued: Map<string, string>
  /** Content hash of the list object as last written. */
  writtenList?: string
}

/** Attempts of phase 1 before a create on a collection that never stops changing gives up. */
const PIN_ATTEMPTS = 16

/**
 * Scans the collection (outside the transaction lock: a long scan never holds up the
 * catalog's writers), reading the drop epoch first. Manifests this snapshot will own are
 * handed to the writer as their segments are read, so writing overlaps the scan.
 */
async function scanPhase(run: PlanRun, prior: Prior, signal: AbortSignal | undefined): Promise<ScanState> {
  const { ctx, reserved, request } = run
  // A read-only transaction: never committed, so its function runs once.
  const reads = new MetaTxn(ctx.meta, signal)
  const found = await readCollectionByName(reads, request.collectionName)
  const collection = found?.id === reserved.collectionId ? found : undefined
  assertSnapshottable(collection, request.collectionName)
  // Read before the scan: a drop after this read is caught at the pin.
  const epoch = await readDropEpoch(reads, collection.id)
  const indexes = (await readIndexRecords(reads, collection.id)).filter((r) => r.droppedAt === undefined)
  const liveIndexIds = new Set(indexes.map((r) => r.id))
  let sinceYield = 0
  const onCapture = async (c: Captured): Promise<void> => {
    if (ownerOf(prior, c, reserved.id) === reserved.id) queueWrite(run, collection.id, c)
    // Let finished writes start the next ones (their callbacks need the event loop).
    if (++sinceYield >= YIELD_EVERY) {
      sinceYield = 0
      await yieldToEventLoop()
    }
  }
  const segments = await scanSegments(reads, collection, liveIndexIds, onCapture)
  return { epoch, collection, indexes, segments, captured: new Set(segments.map((s) => s.segmentId)) }
}

/** Hands the manifest of `c` to the writer unless it was queued with the same content already. */
function queueWrite(run: PlanRun, collectionId: number, c: Captured): void {
  const key = layout.snapshotManifest(collectionId, run.reserved.id, c.segmentId)
  if (run.queued.get(key) === c.hash) return
  run.queued.set(key, c.hash)
  run.writer.add({ key, hash: c.hash, ...c.source })
}

/** The outcome of one pin attempt. */
type PinOutcome = { ok: true; record: SnapshotRecord } | { ok: false; rescan: boolean }

/**
 * The pin, one small transaction (see the invariants above). Expectations on stores with
 * shared batches: the record, the collection's name and record, its drop epoch (and the
 * drop log since the scan, a range read the epoch covers), the snapshot-set version.
 * Writes: the record and the set version. Resolves `{ ok: false }` (writing nothing) when
 * the scan or the reuse decision went stale.
 */
async function pin(tx: MetaTxn, run: PlanRun, scanned: ScanState, prior: Prior, record: SnapshotRecord): Promise<PinOutcome> {
  const { reserved, request } = run
  const pending = await tx.getJson<SnapshotRecord>(keys.snapshot(reserved.id))
  if (pending?.state !== 'pending' || pending.list !== undefined) {
    throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${request.snapshotName} was removed while it was being created`)
  }
  const found = await readCollectionByName(tx, request.collectionName)
  assertSnapshottable(found?.id === reserved.collectionId ? found : undefined, request.collectionName)
  const epoch = await readDropEpoch(tx, reserved.collectionId)
  if (epoch !== scanned.epoch) {
    const drops = await dropsBetween(tx, reserved.collectionId, scanned.epoch, epoch)
    if (drops === 'all' || [...drops].some((s) => scanned.captured.has(s))) return { ok: false, rescan: true }
  }
  const setKey = keys.snapshotSetVersion(reserved.collectionId)
  if (Number((await tx.get(setKey)) ?? '0') !== prior.setVersion) return { ok: false, rescan: false }
  tx.putJson(keys.snapshot(reserved.id), record)
  tx.put(setKey, String(prior.setVersion + 1))
  return { ok: true, record }
}

/**
 * Phase 1: scan, decide what to reuse, write the list, pin; again after a stale scan
 * (a drop concerning a captured segment: scan again) or a stale reuse decision (another
 * create pinned or a drop began: decide again). Every attempt writes the list object
 * before the batch that names it.
 */
async function plan(run: PlanRun, signal: AbortSignal | undefined): Promise<CreatePlan> {
  const { ctx, reserved } = run
  const { id } = reserved
  for (let attempt = 1; attempt <= PIN_ATTEMPTS; attempt++) {
    throwIfAborted(signal)
    const prior = await readPrior(new MetaTxn(ctx.meta, signal), run.lists, reserved.collectionId)
    if (run.scan === undefined) run.scan = await scanPhase(run, prior, signal)
    const scanned = run.scan
    const { collection: captured, indexes } = scanned
    const entries: ListEntry[] = []
    const own = new Set<string>()
    let rowCount = 0
    let sizeBytes = 0
    for (const c of scanned.segments) {
      const owner = ownerOf(prior, c, id)
      entries.push({ segmentId: c.segmentId, manifestOwner: owner, manifestHash: c.hash, manifestSize: c.manifestSize, rows: c.rows, bytes: c.bytes, builds: c.builds })
      if (owner === id) {
        own.add(layout.snapshotManifest(captured.id, id, c.segmentId))
        queueWrite(run, captured.id, c)
      }
      rowCount += c.rows
      sizeBytes += c.bytes
    }
    await dropStaleManifests(run, own)
    const header: SnapshotListHeader = {
      vecsnapList: 1,
      snapshotId: id,
      snapshotName: run.request.snapshotName,
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
    const ref: ListRef = { key: listKey(captured.id, id), hash: list.hash, size: list.bytes.byteLength }
    // The list exists before the batch that names it; the record names its content by hash.
    if (run.writtenList !== list.hash) {
      await ctx.objects.put(ref.key, list.bytes, { signal })
      run.writtenList = list.hash
    }
    const outcome = await ctx.transactor.run(async (tx) => {
      const pending = await tx.getJson<SnapshotRecord>(keys.snapshot(id))
      const record: SnapshotRecord = { ...(pending as SnapshotRecord), segmentCount: entries.length, rowCount, sizeBytes, list: ref }
      return pin(tx, run, scanned, prior, record)
    }, { signal })
    if (outcome.ok) return { record: outcome.record, metadata: encodeMetadata(buildMetadata(outcome.record, header, entries)) }
    if (outcome.rescan) run.scan = undefined
  }
  throw new SnapshotError('FAILED_PRECONDITION', `collection ${run.request.collectionName} kept changing: the snapshot could not pin its segments after ${PIN_ATTEMPTS} attempts`)
}

/**
 * After a scan or reuse decision changed: deletes the manifests queued for this snapshot
 * that its list no longer names (once their writes settled), so that its own directory
 * holds only what it lists.
 */
async function dropStaleManifests(run: PlanRun, own: ReadonlySet<string>): Promise<void> {
  const stale = [...run.queued.keys()].filter((k) => !own.has(k))
  if (stale.length === 0) return
  await run.writer.settled()
  for (const k of stale) run.queued.delete(k)
  await run.ctx.objects.delete(stale)
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
 * Creates a snapshot (phases 0–3 above). The manifest writes start during the scan, so a
 * create costs about the larger of its metadata work and its writes. On failure after phase 0 the snapshot is
 * removed if it is still `pending` and still this manager's (a commit that landed but
 * reported an error is left committed); if that cleanup fails too, recovery finishes it.
 */
export async function createSnapshot(ctx: ManagerContext, lists: ListReader, purge: Purge, request: CreateSnapshotRequest, schedule?: string): Promise<SnapshotInfo> {
  validateRequest(request)
  const { signal } = request
  throwIfAborted(signal)
  const reserved = await ctx.transactor.run((tx) => reserve(tx, request, ctx.now(), ctx.instanceId, schedule), { signal })
  const writer = new ManifestWrites(ctx.objects, MANIFEST_WRITE_CONCURRENCY, signal)
  const run: PlanRun = { ctx, lists, reserved, request, writer, queued: new Map() }
  let committed: SnapshotRecord
  try {
    const p = await plan(run, signal)
    run.scan = undefined
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
