import { SnapshotError, throwIfAborted } from '../errors.js'
import type { FieldIndexFiles, IndexInfo, SegmentFile } from '../catalog-types.js'
import { decodeManifest, encodeManifest, type ManifestRecord } from '../format/manifest-codec.js'
import { capturedBytes } from '../format/segment-capture.js'
import { keys } from '../meta/keys.js'
import { segmentFiles } from '../meta/segment-files.js'
import { FILES_PREFIX, layout } from '../storage/layout.js'
import { readObjectStream, writeObjectStream } from '../storage/streaming.js'
import { decodeMetadata, encodeMetadata, METADATA_FORMAT_VERSION, type SnapshotMetadata } from '../snapshot/metadata-json.js'
import { encodeList, listKey, type ListEntry, type SnapshotListHeader } from '../snapshot/snapshot-list.js'
import { readRecordByName, readRecordByNameTx, toSnapshotInfo, validateSnapshotName, type SnapshotRecord } from '../snapshot/snapshot-record.js'
import type { SnapshotInfo } from '../snapshot/snapshot-types.js'
import { forEachLimit } from '../util/for-each-limit.js'
import { expectCallback, TransferCounts, TRANSFER_CONCURRENCY, type RepositoryDeps } from './repository-deps.js'
import { isEntryId, type EntryFile, type RepositoryEntry } from './repository-format.js'
import { expectObjectStore, normalizePrefix, RepositoryStore } from './repository-store.js'
import { sha256Hex, verifiedBody } from './sha256.js'
import type { ImportSnapshotRequest } from './repository-types.js'

/**
 * `importSnapshot` (SPEC section 14): brings a repository entry into this manager as a
 * committed snapshot with new local IDs.
 *
 * 1. Reads and validates `repository.json` and the entry (`CORRUPT`, `UNSUPPORTED_VERSION`),
 *    then the metadata JSON and every manifest (size and SHA-256 checked; they decode;
 *    every file a manifest names is in the entry with the same size), all before anything
 *    is copied.
 * 2. Copies each segment and index file to `files/imported/{sha256[0:2]}/{sha256}/{path}`
 *    (`path`: its key in the source), streaming, and verifying size and SHA-256 while it
 *    streams: a file that does not match fails its write (nothing left under the key) and
 *    the import rejects `CORRUPT`, registering nothing. The key depends only on the
 *    content and the source key, so a second attempt after a crash finds what the first
 *    one copied (a key is only ever written with the content its SHA-256 names) and copies
 *    only the rest; snapshots imported from one source share the files they have in
 *    common. A file found there is kept only if it is younger than half `orphanGraceMs`,
 *    else copied again (GC could collect an unreferenced file older than that grace
 *    before the import registers it).
 * 3. Allocates new IDs for the snapshot, its collection, partitions, index definitions,
 *    segments and builds (none clashes with a local ID), writes manifests re-encoded with
 *    those IDs and the local keys, the segment list and the metadata JSON under the new
 *    snapshot's keys, then registers the record, committed, in one small batch (its name
 *    checked free in it). Until then nothing is visible; files and objects of an import
 *    that never registered are orphans GC collects after `orphanGraceMs`.
 *
 * The imported snapshot keeps its original `createdAt` and description. Its collection ID
 * is a new ID no collection has (like a snapshot of a dropped collection); restore creates
 * the target collection from the captured definition as usual.
 * @internal
 */

/** Prefix of the files imports write. */
export const IMPORTED_PREFIX = `${FILES_PREFIX}imported/`

const IMPORTED_KEY = /^files\/imported\/[0-9a-f]{2}\/[0-9a-f]{64}\/(.+)$/

/** The local key of an imported file (an already imported file keeps its original source key). */
export function importedKey(f: Pick<EntryFile, 'sha256' | 'path'>): string {
  const path = IMPORTED_KEY.exec(f.path)?.[1] ?? f.path
  return `${IMPORTED_PREFIX}${f.sha256.slice(0, 2)}/${f.sha256}/${path}`
}

function validateRequest(request: ImportSnapshotRequest): string {
  if (typeof request !== 'object' || request === null) throw new TypeError(`Expected \`request\` to be an object, got \`${request === null ? 'null' : typeof request}\``)
  expectObjectStore(request.from, 'from')
  expectCallback(request.onProgress, 'onProgress')
  const prefix = normalizePrefix(request.prefix)
  const id: unknown = request.repositorySnapshotId
  if (typeof id !== 'string') throw new TypeError(`Expected \`repositorySnapshotId\` to be a string, got \`${id === null ? 'null' : typeof id}\``)
  if (!isEntryId(id)) throw new SnapshotError('INVALID_ARGUMENT', `invalid repository snapshot ID ${JSON.stringify(id.slice(0, 64))}`)
  validateSnapshotName(request.snapshotName, 'snapshotName')
  return prefix
}

function corrupt(entry: RepositoryEntry, why: string): SnapshotError {
  return new SnapshotError('CORRUPT', `repository snapshot ${entry.id}: ${why}`, { details: { repositorySnapshotId: entry.id } })
}

/** What step 1 read and checked. */
interface Checked {
  entry: RepositoryEntry
  metadata: SnapshotMetadata
  manifests: ManifestRecord[]
  /** The files to copy: those the manifests name, each once. */
  files: EntryFile[]
}

/** Step 1: everything read from the repository and checked before anything is copied. */
async function readChecked(repo: RepositoryStore, id: string, signal: AbortSignal | undefined): Promise<Checked> {
  await repo.requireInfo({ signal })
  const entry = await repo.readEntry(id, { signal })
  if (entry === undefined) throw new SnapshotError('NOT_FOUND', `repository snapshot not found: ${id}`)
  const metadata = decodeMetadata(await repo.getVerified(entry.metadata, { signal }), entry.metadata.key)
  const pack = await repo.getVerified(entry.manifestPack, { signal })
  const manifests = entry.manifests.map((m, i): ManifestRecord => {
    // The pack's SHA-256 covers these bytes; each manifest's own is checked too (the entry says both).
    const bytes = pack.subarray(m.offset, m.offset + m.size)
    const where = `${entry.manifestPack.key}[${i}]`
    if (sha256Hex(bytes) !== m.sha256) throw new SnapshotError('CORRUPT', `manifest ${i} in ${entry.manifestPack.key} is not the one recorded`, { details: { corrupt: [entry.manifestPack.key] } })
    const decoded = decodeManifest(bytes, where)
    if (decoded.id !== m.segmentId) throw corrupt(entry, `manifest ${where} describes segment ${decoded.id}, not ${m.segmentId}`)
    return decoded
  })
  if (metadata.segmentIds.length !== manifests.length || metadata.segmentIds.some((s, i) => s !== manifests[i].id)) {
    throw corrupt(entry, 'the metadata JSON lists other segments than the entry')
  }
  const partitions = new Set(metadata.collection.partitions.map((p) => p.id))
  const byPath = new Map(entry.files.map((f) => [f.path, f]))
  const files = new Map<string, EntryFile>()
  let rows = 0
  for (const m of manifests) {
    if (!partitions.has(m.partitionId)) throw corrupt(entry, `segment ${m.id} is in partition ${m.partitionId}, which the collection does not have`)
    rows += m.numRows
    for (const { file } of segmentFiles(m)) {
      const f = byPath.get(file.key)
      if (f === undefined || f.size !== file.size) throw corrupt(entry, `file ${file.key} of segment ${m.id} is not in the entry with its size`)
      files.set(f.path, f)
    }
  }
  if (rows !== entry.snapshot.rowCount) throw corrupt(entry, `the manifests hold ${rows} rows, the entry says ${entry.snapshot.rowCount}`)
  return { entry, metadata, manifests, files: [...files.values()] }
}

/** Step 2: copies what is not in place yet. */
async function copyFiles(deps: RepositoryDeps, repo: RepositoryStore, files: readonly EntryFile[], counts: TransferCounts, signal: AbortSignal | undefined): Promise<void> {
  const { ctx } = deps
  const keepYoungerThanMs = ctx.options.orphanGraceMs / 2
  await forEachLimit(files, TRANSFER_CONCURRENCY, async (f) => {
    const local = importedKey(f)
    const found = await ctx.objects.head(local, { signal })
    if (found !== undefined && found.size === f.size && ctx.now() - found.lastModified < keepYoungerThanMs) {
      counts.skipped(f.size)
      return
    }
    const body = await readObjectStream(repo.store, repo.full(f.key), { signal })
    if (body === undefined) throw new SnapshotError('CORRUPT', `repository file ${f.key} (${f.path}) is missing`, { details: { missing: [f.key] } })
    await writeObjectStream(ctx.objects, local, verifiedBody(body, f, `repository file ${f.key} (${f.path})`), { signal, sizeBytes: f.size })
    counts.copied(f.size)
  }, signal)
}

/** Old → new ID maps of an import. */
class IdMap {
  readonly #map = new Map<number, number>()
  readonly #what: string

  constructor(what: string) {
    this.#what = what
  }

  add(id: number): void {
    if (!this.#map.has(id)) this.#map.set(id, 0)
  }

  get size(): number {
    return this.#map.size
  }

  /** Gives the IDs new values from `next`; resolves the next free one. */
  assign(next: number): number {
    for (const k of this.#map.keys()) this.#map.set(k, next++)
    return next
  }

  get(id: number): number {
    const v = this.#map.get(id)
    if (v === undefined) throw new SnapshotError('CORRUPT', `an imported snapshot names ${this.#what} ${id}, which it does not define`)
    return v
  }
}

/** The manifest of `m` with new IDs and local keys. */
function remapManifest(m: ManifestRecord, ids: { collection: number; partitions: IdMap; indexes: IdMap; segments: IdMap; builds: IdMap }, local: Map<string, string>): ManifestRecord {
  const file = (f: SegmentFile): SegmentFile => ({ ...f, key: local.get(f.key) as string })
  const logs = (lists: ManifestRecord['binlogs']): ManifestRecord['binlogs'] => lists.map((fb) => ({ fieldId: fb.fieldId, files: fb.files.map(file) }))
  const fieldIndexes = (lists: FieldIndexFiles[]): FieldIndexFiles[] => lists.map((t) => ({ fieldId: t.fieldId, buildId: ids.builds.get(t.buildId), files: t.files.map(file) }))
  return {
    ...m,
    id: ids.segments.get(m.id),
    collectionId: ids.collection,
    partitionId: ids.partitions.get(m.partitionId),
    binlogs: logs(m.binlogs),
    statslogs: logs(m.statslogs),
    deltalogs: logs(m.deltalogs),
    bm25logs: logs(m.bm25logs),
    indexes: m.indexes.map((ix) => ({ indexId: ids.indexes.get(ix.indexId), buildId: ids.builds.get(ix.buildId), files: ix.files.map(file) })),
    textIndexes: fieldIndexes(m.textIndexes),
    jsonKeyIndexes: fieldIndexes(m.jsonKeyIndexes),
  }
}

/** Step 3: new IDs, the snapshot's objects, then the committed record in one batch. */
async function register(deps: RepositoryDeps, checked: Checked, name: string, signal: AbortSignal | undefined): Promise<SnapshotRecord> {
  const { ctx } = deps
  const { entry, metadata, manifests } = checked
  const partitions = new IdMap('partition')
  const indexes = new IdMap('index')
  const segments = new IdMap('segment')
  const builds = new IdMap('build')
  for (const p of metadata.collection.partitions) partitions.add(p.id)
  for (const ix of metadata.indexes) indexes.add(ix.id)
  for (const m of manifests) {
    segments.add(m.id)
    for (const ix of m.indexes) {
      indexes.add(ix.indexId)
      builds.add(ix.buildId)
    }
    for (const t of [...m.textIndexes, ...m.jsonKeyIndexes]) builds.add(t.buildId)
  }
  const count = 2 + partitions.size + indexes.size + segments.size + builds.size
  const first = await ctx.transactor.run((tx) => tx.allocIds(count), { signal })
  const snapshotId = first
  const collectionId = first + 1
  builds.assign(segments.assign(indexes.assign(partitions.assign(first + 2))))
  const ids = { collection: collectionId, partitions, indexes, segments, builds }
  const local = new Map(checked.files.map((f) => [f.path, importedKey(f)]))
  const written: string[] = []
  try {
    const entries: ListEntry[] = new Array(manifests.length)
    let sizeBytes = 0
    await forEachLimit(manifests, TRANSFER_CONCURRENCY, async (m, i) => {
      const remapped = remapManifest(m, ids, local)
      const encoded = encodeManifest(remapped)
      const key = layout.snapshotManifest(collectionId, snapshotId, remapped.id)
      written.push(key)
      await ctx.objects.put(key, encoded.bytes, { signal, fresh: true })
      const segmentBuilds: number[] = []
      const bytes = capturedBytes(remapped, segmentBuilds)
      entries[i] = { segmentId: remapped.id, manifestOwner: snapshotId, manifestHash: encoded.hash, manifestSize: encoded.bytes.byteLength, rows: remapped.numRows, bytes, builds: segmentBuilds }
    }, signal)
    for (const e of entries) sizeBytes += e.bytes
    const rowCount = entries.reduce((n, e) => n + e.rows, 0)
    const collection = {
      ...metadata.collection,
      id: collectionId,
      partitions: metadata.collection.partitions.map((p) => ({ id: partitions.get(p.id), name: p.name })),
    }
    const indexInfos: IndexInfo[] = metadata.indexes.map((ix) => ({ ...ix, id: indexes.get(ix.id) }))
    const header: SnapshotListHeader = {
      vecsnapList: 1,
      snapshotId,
      snapshotName: name,
      collection,
      indexes: indexInfos,
      segmentCount: entries.length,
      rowCount,
      sizeBytes,
    }
    const list = encodeList(header, entries)
    const listRef = { key: listKey(collectionId, snapshotId), hash: list.hash, size: list.bytes.byteLength }
    written.push(listRef.key)
    await ctx.objects.put(listRef.key, list.bytes, { signal, fresh: true })
    const snap = entry.snapshot
    const record: SnapshotRecord = {
      id: snapshotId,
      name,
      collectionId,
      collectionName: snap.collectionName,
      description: snap.description.slice(0, 1024),
      createdAt: snap.createdAt,
      state: 'committed',
      segmentCount: entries.length,
      rowCount,
      sizeBytes,
      metadataKey: layout.snapshotMetadata(collectionId, snapshotId),
      metadataSize: 0,
      list: listRef,
    }
    const meta: SnapshotMetadata = {
      formatVersion: METADATA_FORMAT_VERSION,
      snapshot: {
        id: snapshotId,
        name,
        description: record.description,
        collectionId,
        collectionName: record.collectionName,
        createdAt: record.createdAt,
        segmentCount: record.segmentCount,
        rowCount,
        sizeBytes,
      },
      collection,
      indexes: indexInfos,
      segmentIds: entries.map((e) => e.segmentId),
      manifests: entries.map((e) => layout.snapshotManifest(collectionId, snapshotId, e.segmentId)),
    }
    const metadataBytes = encodeMetadata(meta)
    record.metadataSize = metadataBytes.byteLength
    written.push(record.metadataKey)
    await ctx.objects.put(record.metadataKey, metadataBytes, { signal, fresh: true })
    throwIfAborted(signal)
    // One small batch: the record (committed), its name, the collection's index of snapshots.
    await ctx.transactor.run(async (tx) => {
      if ((await readRecordByNameTx(tx, name)) !== undefined) throw new SnapshotError('ALREADY_EXISTS', `snapshot already exists: ${name}`)
      tx.putJson(keys.snapshot(snapshotId), record)
      tx.put(keys.snapshotName(name), String(snapshotId))
      tx.put(keys.collectionSnapshot(collectionId, snapshotId), '')
      tx.put(keys.snapshotSetVersion(collectionId), '1')
    }, { signal })
    return record
  } catch (err) {
    // Nothing names these objects; GC would collect them after orphanGraceMs anyway.
    await ctx.objects.delete(written).catch(() => undefined)
    throw err
  }
}

/** Imports entry `request.repositorySnapshotId` as the committed snapshot `request.snapshotName`. */
export async function importSnapshot(deps: RepositoryDeps, request: ImportSnapshotRequest): Promise<SnapshotInfo> {
  const prefix = validateRequest(request)
  const { signal, snapshotName } = request
  throwIfAborted(signal)
  const { ctx } = deps
  const repo = new RepositoryStore(request.from, prefix)
  const checked = await readChecked(repo, request.repositorySnapshotId, signal)
  if ((await readRecordByName(ctx.meta, snapshotName, { signal })) !== undefined) throw new SnapshotError('ALREADY_EXISTS', `snapshot already exists: ${snapshotName}`)
  const counts = new TransferCounts(request.onProgress)
  counts.totalFiles = checked.files.length
  counts.totalBytes = checked.files.reduce((n, f) => n + f.size, 0)
  await copyFiles(deps, repo, checked.files, counts, signal)
  throwIfAborted(signal)
  const record = await register(deps, checked, snapshotName, signal)
  const info = toSnapshotInfo(record)
  ctx.events.emit('snapshotCreated', info)
  return info
}
