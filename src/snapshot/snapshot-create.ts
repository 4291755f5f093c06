import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import type { CollectionInfo, SegmentInfo } from '../meta/catalog-types.js'
import { expectString } from '../meta/catalog-validate.js'
import { idFromKey, keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import { REF_INDEX_FORMAT, segmentRefValue } from '../meta/snapshot-refs.js'
import { readCollectionByName, readCollectionVersion, readIndexRecords, toIndexInfo } from '../meta/records.js'
import type { MetaTxn } from '../meta/transaction.js'
import { layout } from '../storage/layout.js'
import { assembleManifest, encodeManifest, type EncodedManifest, type ManifestRecord } from './manifest-codec.js'
import { ManifestWrites, type ManifestWrite } from './manifest-writes.js'
import { encodeMetadata, METADATA_FORMAT_VERSION, type SnapshotMetadata } from './metadata-json.js'
import { captureSegment, capturedBytes, readCapture, type SegmentCapture } from './segment-capture.js'
import { toSnapshotInfo, validateSnapshotName, type SnapshotRecord } from './snapshot-record.js'
import type { CreateSnapshotRequest, SnapshotInfo } from './snapshot-types.js'

/** Manifest writes in flight during create. */
export const MANIFEST_WRITE_CONCURRENCY = 16

/** Segment records read concurrently in phase 1 when a scan does not find them (LevelDB serves gets on the libuv pool). */
const READ_CONCURRENCY = 64

/**
 * Segment records phase 1 reads at a time: the manifests of one chunk are being written
 * while the next chunk is read.
 */
const READ_CHUNK = 500

/** Segments phase 1 plans between turns of the event loop while manifests are being written. */
const YIELD_EVERY = 32

/** Committed snapshots looked at (newest first) for manifests to reuse. */
const REUSE_CANDIDATES = 4

/** A manifest an earlier snapshot wrote. */
interface PriorManifest {
  key: string
  hash: string
  size: number
}

/** Everything phase 1 decided; phases 2 and 3 only carry it out. */
interface CreatePlan {
  /** The `pending` record as phase 1 wrote it (see `SnapshotRecord.manifestSizes`), and its JSON. */
  record: SnapshotRecord
  recordJson: string
  /** Manifests phase 1 did not hand to the writer as it went (stores whose transactions may run twice). */
  writes: ManifestWrite[]
  metadata: Uint8Array
}

/** What phase 0 reserved. */
interface Reservation {
  id: number
  collectionId: number
}

/** Removes a half-made snapshot (records, pins, objects); see `purgeSnapshot`. */
export type Purge = (snapshotId: number) => Promise<void>

function validateRequest(request: CreateSnapshotRequest): void {
  if (typeof request !== 'object' || request === null) throw new TypeError(`Expected \`request\` to be an object, got \`${request === null ? 'null' : typeof request}\``)
  expectString(request.collectionName, 'collectionName')
  if (request.collectionName === '') throw new SnapshotError('INVALID_ARGUMENT', '`collectionName` must be a non-empty string')
  validateSnapshotName(request.snapshotName, 'snapshotName')
  if (request.description !== undefined && typeof request.description !== 'string') {
    throw new TypeError(`Expected \`description\` to be a string, got \`${typeof request.description}\``)
  }
}

/** A segment phase 1 captures: its stored capture, or its record where that is not usable. */
type CaptureSource = { id: number; capture: NonNullable<SegmentCapture['flushed']>; seg?: undefined } | { id: number; seg: SegmentInfo; capture?: undefined }

/**
 * A chunk's fallback reads use one range scan when they are at least this share of the
 * segment IDs from the first to the last of them (IDs come from one allocator shared by
 * every collection, so another collection's segments may lie between); point reads otherwise.
 */
const DENSE_FALLBACK = 1 / 4

/**
 * Turns a chunk of the collection's segment index into what phase 1 captures: stored
 * captures where every index they include is live, and otherwise the segment records.
 * Segments the index says are not flushed are left out.
 *
 * What the snapshot depends on is recorded for the commit to check (stores with shared
 * batches): each entry whose capture it uses, each entry of a segment not flushed yet (a
 * flush changes the entry, not the collection's version), and the record of each segment
 * it reads instead of its entry. Entries of dropped segments are not: a dropped segment
 * stays dropped. Segments added meanwhile change the collection's version, which phase 1
 * also read.
 */
async function resolveChunk(tx: MetaTxn, entries: readonly IndexEntry[], liveIndexIds: ReadonlySet<number>): Promise<CaptureSource[]> {
  const out: (CaptureSource | undefined)[] = []
  /** Segments to read the record of: position in `out`, ID. */
  const missing: [number, number][] = []
  for (const { key, id, value } of entries) {
    const stored = readCapture(value)
    if (stored !== undefined && stored.flushed === undefined) {
      if (stored.state !== 'dropped') tx.noteRead(key, value)
      continue
    }
    if (stored?.flushed !== undefined && stored.flushed.indexIds.every((ix) => liveIndexIds.has(ix))) {
      tx.noteRead(key, value)
      out.push({ id, capture: stored.flushed })
    } else {
      missing.push([out.length, id])
      out.push(undefined)
    }
  }
  if (missing.length > 0) {
    const segmentKeys = missing.map(([, id]) => keys.segment(id))
    // Records are keyed by ID across collections, and a collection's usually lie together:
    // one scan serves many (getMany falls back to point reads for what it does not find).
    const span = missing[missing.length - 1][1] - missing[0][1] + 1
    const dense = missing.length >= span * DENSE_FALLBACK
    const scan = dense ? { gte: segmentKeys[0], lte: segmentKeys[segmentKeys.length - 1] } : undefined
    const values = await tx.getMany(segmentKeys, { scan, concurrency: READ_CONCURRENCY })
    for (let j = 0; j < missing.length; j++) {
      const value = values[j]
      const [at, id] = missing[j]
      if (value !== undefined) out[at] = { id, seg: JSON.parse(value) as SegmentInfo }
    }
  }
  return out.filter((c) => c !== undefined)
}

/** An entry of the collection's segment index. */
interface IndexEntry {
  key: string
  id: number
  value: string
}

/** The collection's segments, `READ_CHUNK` at a time, in ID order, from one scan of its segment index. */
async function* readSegmentsForCapture(tx: MetaTxn, collectionId: number, liveIndexIds: ReadonlySet<number>): AsyncGenerator<CaptureSource[]> {
  let chunk: IndexEntry[] = []
  for await (const [key, value] of tx.iterate(prefixRange(keys.collectionSegmentPrefix(collectionId)))) {
    chunk.push({ key, id: idFromKey(key), value })
    if (chunk.length >= READ_CHUNK) {
      yield await resolveChunk(tx, chunk, liveIndexIds)
      chunk = []
    }
  }
  if (chunk.length > 0) yield await resolveChunk(tx, chunk, liveIndexIds)
}

/**
 * The manifests of the newest committed snapshot of the collection, by segment: flushed
 * segments are immutable, so one whose manifest would hash the same is not written again.
 * (Snapshots still being created or deleted are skipped.)
 */
async function priorManifests(tx: MetaTxn, collectionId: number): Promise<{ sourceId?: number; manifests: Map<number, PriorManifest> }> {
  const manifests = new Map<number, PriorManifest>()
  const range = { ...prefixRange(keys.collectionSnapshotPrefix(collectionId)), reverse: true, limit: REUSE_CANDIDATES }
  const ids: number[] = []
  for await (const [key] of tx.iterate(range)) ids.push(Number(key.slice(key.lastIndexOf('/') + 1)))
  for (const id of ids) {
    const r = await tx.getJson<SnapshotRecord>(keys.snapshot(id))
    if (r?.state !== 'committed') continue
    for (let i = 0; i < r.segmentIds.length; i++) {
      manifests.set(r.segmentIds[i], { key: r.manifestKeys[i], hash: r.manifestHashes[i], size: r.manifestSizes[i] })
    }
    return { sourceId: id, manifests }
  }
  return { manifests }
}

/** Throws unless the collection can be snapshotted now. */
function assertSnapshottable(collection: CollectionInfo | undefined, collectionName: string): asserts collection is CollectionInfo {
  if (collection === undefined) throw new SnapshotError('NOT_FOUND', `collection not found: ${collectionName}`)
  if (collection.state === 'restoring') {
    throw new SnapshotError('FAILED_PRECONDITION', `collection ${collectionName} is being restored into; snapshot it once the restore completes`)
  }
}

/**
 * Phase 0, one small transaction: checks the request, allocates the snapshot ID and
 * writes an empty `pending` record with the name key. From here on the name is taken, and
 * a crash leaves a record that recovery removes, together with anything written under the
 * snapshot's own manifest directory.
 */
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
    segmentIds: [],
    buildIds: [],
    segmentCount: 0,
    rowCount: 0,
    sizeBytes: 0,
    metadataKey: layout.snapshotMetadata(collection.id, id),
    metadataSize: 0,
    manifestKeys: [],
    manifestSizes: [],
    manifestHashes: [],
  }
  if (owner !== undefined) record.owner = owner
  tx.putJson(keys.snapshot(id), record)
  tx.put(keys.snapshotName(snapshotName), String(id))
  tx.put(keys.collectionSnapshot(collection.id, id), '')
  return { id, collectionId: collection.id }
}

/**
 * Phase 1, inside one transaction: reads the collection, its flushed segments and live
 * index definitions, decides which manifests to write and which to reuse, and turns the
 * reserved record into the full `pending` record with every reference (segment, build,
 * reused manifest). With `write`, each manifest to write is handed over as soon as its
 * segment is read (so writing overlaps the rest of the phase); otherwise they are
 * returned in `writes`.
 */
async function plan(tx: MetaTxn, reserved: Reservation, request: CreateSnapshotRequest, write: ((w: ManifestWrite) => void) | undefined): Promise<CreatePlan> {
  const { collectionName } = request
  const { id } = reserved
  const pending = await tx.getJson<SnapshotRecord>(keys.snapshot(id))
  if (pending?.state !== 'pending') {
    throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${request.snapshotName} was removed while it was being created`)
  }
  const found = await readCollectionByName(tx, collectionName)
  // Dropped (and perhaps created again) since phase 0: the reserved keys name the old collection.
  const collection = found?.id === reserved.collectionId ? found : undefined
  assertSnapshottable(collection, collectionName)
  // Segments and indexes are range reads: the version makes a concurrent change conflict (stores with shared batches).
  await readCollectionVersion(tx, collection.id)
  const indexes = (await readIndexRecords(tx, collection.id)).filter((r) => r.droppedAt === undefined)
  const liveIndexIds = new Set(indexes.map((r) => r.id))
  const prior = await priorManifests(tx, collection.id)

  const record: SnapshotRecord = { ...pending, segmentIds: [], buildIds: [], refIndex: REF_INDEX_FORMAT, manifestKeys: [], manifestSizes: [], manifestHashes: [] }
  const writes: ManifestWrite[] = []
  const reused = new Set<string>()
  const buildIds = new Set<number>()
  /** The reference index entry of each captured segment (see `segmentRefValue`). */
  const refValues: string[] = []
  let sinceYield = 0
  for await (const chunk of readSegmentsForCapture(tx, collection.id, liveIndexIds)) {
    for (const source of chunk) {
      // Let finished writes start the next ones (their callbacks need the event loop).
      if (write !== undefined && ++sinceYield >= YIELD_EVERY) {
        sinceYield = 0
        await yieldToEventLoop()
      }
      const { id: segmentId, capture: stored } = source
      let m: ManifestRecord | undefined
      let rows: number
      let bytes: number
      let builds: number[]
      /** Present once known: from the stored capture, or by encoding to compare with an earlier manifest. */
      let encoded: EncodedManifest | undefined
      let hash: string | undefined
      if (stored !== undefined) {
        ;({ rows, bytes, builds } = stored)
        hash = stored.manifest.hash
      } else {
        if (source.seg.state !== 'flushed') continue
        m = captureSegment(source.seg, liveIndexIds)
        builds = []
        bytes = capturedBytes(m, builds)
        rows = m.numRows
      }
      const index = record.segmentIds.length
      const earlier = prior.manifests.get(segmentId)
      // Only a manifest that an earlier one may stand for is encoded now, to compare hashes.
      if (earlier !== undefined && m !== undefined) {
        encoded = encodeManifest(m)
        hash = encoded.hash
      }
      if (earlier !== undefined && hash === earlier.hash) {
        reused.add(earlier.key)
        record.manifestKeys.push(earlier.key)
        record.manifestSizes.push(earlier.size)
        record.manifestHashes.push(earlier.hash)
      } else {
        if (stored !== undefined) encoded = assembleManifest(stored.manifest)
        const key = layout.snapshotManifest(collection.id, id, segmentId)
        // Without a stored capture, `m` is the record read.
        const w: ManifestWrite = encoded !== undefined ? { index, key, encoded } : { index, key, manifest: m as ManifestRecord }
        if (write === undefined) writes.push(w)
        else write(w)
        record.manifestKeys.push(key)
        record.manifestSizes.push(encoded?.bytes.byteLength ?? 0)
        record.manifestHashes.push(encoded?.hash ?? '')
      }
      record.segmentIds.push(segmentId)
      record.rowCount += rows
      record.sizeBytes += bytes
      for (const b of builds) buildIds.add(b)
      refValues.push(segmentRefValue(builds))
    }
  }
  record.segmentCount = record.segmentIds.length
  record.buildIds = [...buildIds].sort((a, b) => a - b)

  const metadata = encodeMetadata(buildMetadata(record, collection, indexes.map(toIndexInfo)))
  record.metadataSize = metadata.byteLength

  const recordJson = JSON.stringify(record)
  tx.put(keys.snapshot(id), recordJson)
  for (let i = 0; i < record.segmentIds.length; i++) tx.put(keys.segmentRef(record.segmentIds[i], id), refValues[i])
  // The writer of a manifest is known from its key; only reuse needs a reference.
  for (const key of reused) tx.put(keys.manifestRef(key, id), '')
  if (reused.size > 0 && prior.sourceId !== undefined) {
    const counter = keys.snapshotReuse(prior.sourceId)
    tx.put(counter, String(Number((await tx.get(counter)) ?? '0') + 1))
  }
  return { record, recordJson, writes, metadata }
}

function buildMetadata(r: SnapshotRecord, c: CollectionInfo, indexes: SnapshotMetadata['indexes']): SnapshotMetadata {
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
    collection: {
      id: c.id,
      name: c.name,
      schema: c.schema,
      shardsNum: c.shardsNum,
      channels: c.channels,
      partitions: c.partitions,
      properties: c.properties,
      createdAt: c.createdAt,
    },
    indexes,
    segmentIds: r.segmentIds,
    manifests: r.manifestKeys,
  }
}

/** Phase 3, inside one transaction: `pending` → `committed`, with the sizes and hashes of the manifests written. */
async function commit(tx: MetaTxn, p: CreatePlan, written: ManifestWrites): Promise<SnapshotRecord> {
  const raw = await tx.get(keys.snapshot(p.record.id))
  // Unchanged since phase 1 (the usual case): no need to parse the record (10k segments: ~1 MB) again.
  const current = raw === p.recordJson ? p.record : raw === undefined ? undefined : (JSON.parse(raw) as SnapshotRecord)
  if (current === undefined || current.state !== 'pending') {
    throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${p.record.name} was removed while it was being created`)
  }
  const manifestSizes = [...current.manifestSizes]
  const manifestHashes = [...current.manifestHashes]
  for (const [i, size] of written.sizes) manifestSizes[i] = size
  for (const [i, hash] of written.hashes) manifestHashes[i] = hash
  const committed: SnapshotRecord = { ...current, state: 'committed', manifestSizes, manifestHashes }
  tx.putJson(keys.snapshot(committed.id), committed)
  return committed
}

/**
 * Creates a snapshot: reserve the name (phase 0), pin the segments (phase 1), write the
 * manifests and metadata JSON (phase 2), commit (phase 3). On stores whose transactions
 * run exactly once (no cross-process conflicts: memory, LevelDB), phase 2's manifest
 * writes start during phase 1, as its segment reads go: a create then costs about the
 * larger of its metadata work and its writes, not their sum. Every manifest it writes is
 * under its own directory, which a failed create (or recovery) removes whole. On
 * failure after phase 0 it removes what it made, then rethrows; if that cleanup fails
 * too, recovery on the next `open()` finishes it.
 */
export async function createSnapshot(ctx: ManagerContext, purge: Purge, request: CreateSnapshotRequest): Promise<SnapshotInfo> {
  validateRequest(request)
  const { signal } = request
  throwIfAborted(signal)
  const reserved = await ctx.transactor.run((tx) => reserve(tx, request, ctx.now(), ctx.instanceId), { signal })
  const writer = new ManifestWrites(ctx.objects, MANIFEST_WRITE_CONCURRENCY, signal)
  // A transaction that may run again (a conflict on a shared store) must have no side effects.
  const early = !ctx.transactor.store.capabilities.sharedConditionalBatch
  let committed: SnapshotRecord
  try {
    const p = await ctx.transactor.run((tx) => plan(tx, reserved, request, early ? (w) => writer.add(w) : undefined), { signal })
    for (const w of p.writes) writer.add(w)
    await writer.finish()
    throwIfAborted(signal)
    await ctx.objects.put(p.record.metadataKey, p.metadata, { signal })
    throwIfAborted(signal)
    committed = await ctx.transactor.run((tx) => commit(tx, p, writer), { signal })
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
