import type { ManagerContext } from '../context.js'
import { SnapshotError, throwIfAborted } from '../errors.js'
import type { CollectionInfo, SegmentInfo } from '../meta/catalog-types.js'
import { keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import { listSegmentIds, readCollectionByName, readCollectionVersion, readIndexRecords, toIndexInfo } from '../meta/records.js'
import type { MetaTxn } from '../meta/transaction.js'
import { layout } from '../storage/layout.js'
import { encodeManifest, type EncodedManifest, type ManifestRecord } from './manifest-codec.js'
import { encodeMetadata, METADATA_FORMAT_VERSION, type SnapshotMetadata } from './metadata-json.js'
import {
  forEachLimit,
  toSnapshotInfo,
  validateSnapshotName,
  type SnapshotRecord,
} from './snapshot-record.js'
import type { CreateSnapshotRequest, SnapshotInfo } from './snapshot-types.js'

/** Manifest writes in flight during create. */
export const MANIFEST_WRITE_CONCURRENCY = 16

/** Segment records read concurrently in phase 1 when a scan does not find them (LevelDB serves gets on the libuv pool). */
const READ_CONCURRENCY = 64

/** Committed snapshots looked at (newest first) for manifests to reuse. */
const REUSE_CANDIDATES = 4

/**
 * A manifest the new snapshot writes itself. Encoding waits for phase 2 (where it
 * overlaps the writes in flight, outside the transaction) unless phase 1 had to encode
 * it to compare it with an earlier snapshot's.
 */
interface ManifestWrite {
  /** Position in the record's manifest lists. */
  index: number
  key: string
  manifest: ManifestRecord
  encoded?: EncodedManifest
}

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
  /** The record's manifest sizes and hashes, completed in phase 2 as the manifests are encoded. */
  manifestSizes: number[]
  manifestHashes: string[]
  writes: ManifestWrite[]
  metadata: Uint8Array
}

/** Removes a half-made snapshot (records, pins, objects); see `purgeSnapshot`. */
export type Purge = (snapshotId: number) => Promise<void>

function validateRequest(request: CreateSnapshotRequest): void {
  if (typeof request !== 'object' || request === null) throw new TypeError(`Expected \`request\` to be an object, got \`${request === null ? 'null' : typeof request}\``)
  if (typeof request.collectionName !== 'string' || request.collectionName === '') {
    throw new SnapshotError('INVALID_ARGUMENT', '`collectionName` must be a non-empty string')
  }
  validateSnapshotName(request.snapshotName)
  if (request.description !== undefined && typeof request.description !== 'string') {
    throw new TypeError(`Expected \`description\` to be a string, got \`${typeof request.description}\``)
  }
}

/** The segment as a snapshot captures it: only index files of live index definitions. */
function capture(seg: SegmentInfo, liveIndexIds: ReadonlySet<number>): ManifestRecord {
  return {
    id: seg.id,
    collectionId: seg.collectionId,
    partitionId: seg.partitionId,
    channel: seg.channel,
    state: seg.state,
    level: seg.level,
    numRows: seg.numRows,
    binlogs: seg.binlogs ?? [],
    statslogs: seg.statslogs ?? [],
    deltalogs: seg.deltalogs ?? [],
    bm25logs: seg.bm25logs ?? [],
    indexes: (seg.indexes ?? []).filter((ix) => liveIndexIds.has(ix.indexId)),
    textIndexes: seg.textIndexes ?? [],
    jsonKeyIndexes: seg.jsonKeyIndexes ?? [],
  }
}

/**
 * Summed size of every file of a captured segment (what `segmentBytes` sums, without a
 * generator per segment); adds the builds it holds to `buildIds` on the way.
 */
function capturedBytes(m: ManifestRecord, buildIds: Set<number>): number {
  let total = 0
  for (const lists of [m.binlogs, m.statslogs, m.deltalogs, m.bm25logs]) {
    for (const fb of lists) for (const f of fb.files) total += f.size
  }
  for (const lists of [m.indexes, m.textIndexes, m.jsonKeyIndexes]) {
    for (const built of lists) {
      buildIds.add(built.buildId)
      for (const f of built.files) total += f.size
    }
  }
  return total
}

/**
 * Like `readSegments`: every record read as a validated `tx.get` would. Segment records
 * are keyed by ID across collections, and a collection's usually lie together, so one
 * scan from its first to its last serves them (`getMany` falls back to point reads when
 * other collections' segments fill that range).
 */
async function readSegmentsForCapture(tx: MetaTxn, collectionId: number): Promise<SegmentInfo[]> {
  const ids = await listSegmentIds(tx, collectionId)
  if (ids.length === 0) return []
  const segmentKeys = ids.map((id) => keys.segment(id))
  const scan = { gte: segmentKeys[0], lte: segmentKeys[segmentKeys.length - 1] }
  const values = await tx.getMany(segmentKeys, { scan, concurrency: READ_CONCURRENCY })
  const out: SegmentInfo[] = []
  for (const value of values) if (value !== undefined) out.push(JSON.parse(value) as SegmentInfo)
  return out
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

/**
 * Phase 1, inside one transaction: reads the collection, its flushed segments and live
 * index definitions, decides which manifests to write and which to reuse, and writes the
 * `pending` record, the name key and every reference (segment, build, reused manifest).
 * Manifests of segments no earlier snapshot captured are encoded in phase 2.
 */
async function plan(tx: MetaTxn, request: CreateSnapshotRequest, now: number, owner: string | undefined): Promise<CreatePlan> {
  const { collectionName, snapshotName } = request
  const collection = await readCollectionByName(tx, collectionName)
  if (collection === undefined) throw new SnapshotError('NOT_FOUND', `collection not found: ${collectionName}`)
  if (collection.state === 'restoring') {
    throw new SnapshotError('FAILED_PRECONDITION', `collection ${collectionName} is being restored into; snapshot it once the restore completes`)
  }
  if ((await tx.get(keys.snapshotName(snapshotName))) !== undefined) {
    throw new SnapshotError('ALREADY_EXISTS', `snapshot already exists: ${snapshotName}`)
  }
  // Segments and indexes are range reads: the version makes a concurrent change conflict (stores with shared batches).
  await readCollectionVersion(tx, collection.id)
  const segments = (await readSegmentsForCapture(tx, collection.id)).filter((s) => s.state === 'flushed')
  const indexes = (await readIndexRecords(tx, collection.id)).filter((r) => r.droppedAt === undefined)
  const liveIndexIds = new Set(indexes.map((r) => r.id))
  const prior = await priorManifests(tx, collection.id)
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
    segmentCount: segments.length,
    rowCount: 0,
    sizeBytes: 0,
    metadataKey: layout.snapshotMetadata(collection.id, id),
    metadataSize: 0,
    manifestKeys: [],
    manifestSizes: [],
    manifestHashes: [],
  }
  if (owner !== undefined) record.owner = owner
  const writes: ManifestWrite[] = []
  const reused = new Set<string>()
  const buildIds = new Set<number>()
  for (const seg of segments) {
    const m = capture(seg, liveIndexIds)
    const index = record.segmentIds.length
    const earlier = prior.manifests.get(seg.id)
    // Only a manifest that an earlier one may stand for is encoded now, to compare hashes.
    const encoded = earlier === undefined ? undefined : encodeManifest(m)
    if (earlier !== undefined && encoded?.hash === earlier.hash) {
      reused.add(earlier.key)
      record.manifestKeys.push(earlier.key)
      record.manifestSizes.push(earlier.size)
      record.manifestHashes.push(earlier.hash)
    } else {
      const key = layout.snapshotManifest(collection.id, id, seg.id)
      writes.push({ index, key, manifest: m, encoded })
      record.manifestKeys.push(key)
      record.manifestSizes.push(encoded?.bytes.byteLength ?? 0)
      record.manifestHashes.push(encoded?.hash ?? '')
    }
    record.segmentIds.push(seg.id)
    record.rowCount += m.numRows
    record.sizeBytes += capturedBytes(m, buildIds)
  }
  record.buildIds = [...buildIds].sort((a, b) => a - b)

  const metadata = encodeMetadata(buildMetadata(record, collection, indexes.map(toIndexInfo)))
  record.metadataSize = metadata.byteLength

  const recordJson = JSON.stringify(record)
  tx.put(keys.snapshot(id), recordJson)
  tx.put(keys.snapshotName(snapshotName), String(id))
  tx.put(keys.collectionSnapshot(collection.id, id), '')
  for (const segId of record.segmentIds) tx.put(keys.segmentRef(segId, id), '')
  for (const buildId of record.buildIds) tx.put(keys.buildRef(buildId, id), '')
  // The writer of a manifest is known from its key; only reuse needs a reference.
  for (const key of reused) tx.put(keys.manifestRef(key, id), '')
  if (reused.size > 0 && prior.sourceId !== undefined) {
    const counter = keys.snapshotReuse(prior.sourceId)
    tx.put(counter, String(Number((await tx.get(counter)) ?? '0') + 1))
  }
  return { record, recordJson, manifestSizes: [...record.manifestSizes], manifestHashes: [...record.manifestHashes], writes, metadata }
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

/** Phase 3, inside one transaction: `pending` → `committed`. */
async function commit(tx: MetaTxn, p: CreatePlan): Promise<SnapshotRecord> {
  const raw = await tx.get(keys.snapshot(p.record.id))
  // Unchanged since phase 1 (the usual case): no need to parse the record (10k segments: ~1 MB) again.
  const current = raw === p.recordJson ? p.record : raw === undefined ? undefined : (JSON.parse(raw) as SnapshotRecord)
  if (current === undefined || current.state !== 'pending') {
    throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${p.record.name} was removed while it was being created`)
  }
  const committed: SnapshotRecord = { ...current, state: 'committed', manifestSizes: p.manifestSizes, manifestHashes: p.manifestHashes }
  tx.putJson(keys.snapshot(committed.id), committed)
  return committed
}

/**
 * Creates a snapshot: pin (phase 1), write manifests and metadata JSON (phase 2), commit
 * (phase 3). On failure after phase 1 it removes what it made, then rethrows; if that
 * cleanup fails too, recovery on the next `open()` finishes it.
 */
export async function createSnapshot(ctx: ManagerContext, purge: Purge, request: CreateSnapshotRequest): Promise<SnapshotInfo> {
  validateRequest(request)
  const { signal } = request
  throwIfAborted(signal)
  const p = await ctx.transactor.run((tx) => plan(tx, request, ctx.now(), ctx.instanceId), { signal })
  let committed: SnapshotRecord
  try {
    throwIfAborted(signal)
    await forEachLimit(p.writes, MANIFEST_WRITE_CONCURRENCY, async (w) => {
      const encoded = w.encoded ?? encodeManifest(w.manifest)
      p.manifestSizes[w.index] = encoded.bytes.byteLength
      p.manifestHashes[w.index] = encoded.hash
      await ctx.objects.put(w.key, encoded.bytes, { signal, fresh: true })
    }, signal)
    throwIfAborted(signal)
    await ctx.objects.put(p.record.metadataKey, p.metadata, { signal })
    throwIfAborted(signal)
    committed = await ctx.transactor.run((tx) => commit(tx, p), { signal })
  } catch (err) {
    await purge(p.record.id).catch(() => undefined)
    throw err
  }
  const info = toSnapshotInfo(committed)
  ctx.events.emit('snapshotCreated', info)
  return info
}
