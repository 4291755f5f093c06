import { createHash, randomUUID } from 'node:crypto'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { segmentFiles } from '../meta/segment-files.js'
import { FILES_PREFIX, layout, SNAPSHOTS_PREFIX } from '../storage/layout.js'
import { readObjectStream } from '../storage/streaming.js'
import { validateSnapshotName } from '../snapshot/snapshot-record.js'
import type { LoadedSnapshot } from '../snapshot/snapshot-store.js'
import type { SegmentFile } from '../catalog-types.js'
import { forEachLimit } from '../util/for-each-limit.js'
import { expectCallback, storeIdOf, TransferCounts, TRANSFER_CONCURRENCY, type RepositoryDeps } from './repository-deps.js'
import {
  encodeEntry,
  ENTRY_FORMAT_VERSION,
  entryKey,
  fileKey,
  encodeSourcePointer,
  REPOSITORY_FILES_PREFIX,
  sourcePointerKey,
  type EntryFile,
  type EntryManifest,
  type EntryObject,
  type RepositoryEntry,
} from './repository-format.js'
import { RepositoryLock } from './repository-lock.js'
import { expectObjectStore, normalizePrefix, RepositoryStore } from './repository-store.js'
import { hashStream, sha256Hex, verifiedBody } from './sha256.js'
import type { ExportReport, ExportSnapshotOptions } from './repository-types.js'

/**
 * `exportSnapshot` (SPEC section 14): copies a committed snapshot into a repository, only
 * what the repository lacks, and writes the entry last.
 *
 * - **The snapshot stays.** A hold tagged `vecsnap-export:{uuid}` with a TTL of
 *   {@link EXPORT_HOLD_TTL_MS} (renewed every third of it) keeps it from being dropped
 *   (`IN_USE`) while the export reads it, and so GC keeps its files. It is released at the
 *   end; after a crash it expires.
 * - **What is skipped.** Files are content-addressed (`files/{sha256}`). A file whose
 *   SHA-256 is known and whose object the repository has with the recorded size is not
 *   copied. The SHA-256 of a source file is known without reading it when an earlier entry
 *   of the same source (`v/store-id`) recorded the same key, size and modification time
 *   (source files are immutable; rsync's quick check), or when the host recorded a
 *   `sha256:` checksum; otherwise the file is read once to hash it. A file that is copied is
 *   hashed again while it streams, and the write fails (nothing left under its key) unless
 *   the bytes have that SHA-256, so a key never holds other content than its name; a file
 *   the hash read in one chunk (up to 4 MiB from a filesystem) is uploaded from those very
 *   bytes instead, read once. Hashes of one-chunk bodies run off the event loop
 *   (`sha256.ts`).
 * - **Same store.** When the repository is in the manager's own ObjectStore (the same
 *   object, e.g. the same S3 bucket under another prefix), files are copied with the
 *   store's `copy` (S3 CopyObject, a hard link on a filesystem): no bytes pass through
 *   the process after the hash.
 * - **Resumable.** The entry is written after every file it names is in place, so a
 *   partial export is invisible; calling it again after a crash or an abort reads (to
 *   hash) the files whose SHA-256 it does not know yet, and copies only those the
 *   repository lacks.
 * @internal
 */

/** TTL of the hold an export keeps on its snapshot. */
export const EXPORT_HOLD_TTL_MS = 15 * 60_000

/** Prefix of the hold tags of exports. */
export const EXPORT_HOLD_TAG_PREFIX = 'vecsnap-export:'

/** The repository snapshot ID of a snapshot: its name and 12 hex digits of its identity in its source. */
export function repositorySnapshotIdOf(storeId: string, snapshot: { id: number; name: string; createdAt: number }): string {
  const h = createHash('sha256').update(`${storeId}\n${snapshot.id}\n${snapshot.createdAt}`).digest('hex').slice(0, 12)
  return `${snapshot.name}-${h}`
}

function validateOptions(options: ExportSnapshotOptions): string {
  if (typeof options !== 'object' || options === null) throw new TypeError(`Expected \`options\` to be an object with a \`to\` store, got \`${options === null ? 'null' : typeof options}\``)
  expectObjectStore(options.to, 'to')
  expectCallback(options.onProgress, 'onProgress')
  return normalizePrefix(options.prefix)
}

/**
 * This source collection's files as the latest entry exported from it recorded them (by
 * source key), through its pointer `sources/{storeId}/{collectionId}.json`: one pointer and
 * one entry read, however many entries the repository holds. A pointer or entry that does
 * not read back, or names another source, is ignored (it is only a shortcut).
 */
async function knownFiles(repo: RepositoryStore, storeId: string, collectionId: number, signal: AbortSignal | undefined): Promise<Map<string, EntryFile>> {
  const files = new Map<string, EntryFile>()
  const key = sourcePointerKey(storeId, collectionId)
  if (key === undefined) return files
  const entry = await repo.readLatestEntry(key, { signal }).catch((err: unknown) => {
    if (SnapshotError.is(err, 'CORRUPT') || SnapshotError.is(err, 'UNSUPPORTED_VERSION')) return undefined
    throw err
  })
  if (entry === undefined || entry.source.storeId !== storeId || entry.source.collectionId !== collectionId) return files
  for (const f of entry.files) files.set(f.path, f)
  return files
}

/** Manifests read from the source at once (small objects). */
const READ_CONCURRENCY = 16

/** Objects one listing request returns (S3's page). */
const LIST_PAGE = 1_000

/** Listed keys kept whatever they are; beyond this, only the keys an export looks for (about 12 MB of keys). */
const KEEP_ALL_LISTED = 100_000

/**
 * Whether the repository holds a key at a size: from one listing of `files/` when that
 * costs fewer requests than a HEAD per key, else a HEAD per key. The listing stops, and
 * HEADs answer instead, once it has cost as many requests as the HEADs would (so at most
 * twice the cheaper way). It keeps every key up to {@link KEEP_ALL_LISTED}, beyond that only
 * the `wanted` ones (whose content address is known before reading the file); a key it did
 * not keep is asked by HEAD. A listing is as fresh as a HEAD for what an export needs: a
 * file appearing after it is copied again (same content, same key).
 */
export class RepositoryFiles {
  readonly #repo: RepositoryStore
  #listed: Map<string, number> | undefined
  /** Whether `#listed` holds every key under `files/`. */
  #complete = false
  #wanted: ReadonlySet<string> = new Set()
  readonly #keepAll: number

  /** `keepAllListed`: {@link KEEP_ALL_LISTED} but in tests. */
  constructor(repo: RepositoryStore, keepAllListed = KEEP_ALL_LISTED) {
    this.#repo = repo
    this.#keepAll = keepAllListed
  }

  /** Lists `files/` when `candidates` keys are to be checked, `wanted` among them known already. */
  async prepare(candidates: number, wanted: ReadonlySet<string>, signal: AbortSignal | undefined): Promise<void> {
    const budget = (candidates - 1) * LIST_PAGE
    const listed = new Map<string, number>()
    let n = 0
    for await (const info of this.#repo.list(REPOSITORY_FILES_PREFIX, { signal })) {
      if (++n > budget) return
      if (n <= this.#keepAll || wanted.has(info.key)) listed.set(info.key, info.size)
    }
    this.#listed = listed
    this.#complete = n <= this.#keepAll
    this.#wanted = wanted
  }

  async has(key: string, size: number, signal: AbortSignal | undefined): Promise<boolean> {
    const listed = this.#listed?.get(key)
    if (listed !== undefined) return listed === size
    if (this.#listed !== undefined && (this.#complete || this.#wanted.has(key))) return false
    return (await this.#repo.head(key, { signal }))?.size === size
  }
}

function hostSha256(file: SegmentFile): string | undefined {
  const m = /^sha256:([0-9a-fA-F]{64})$/.exec(file.checksum ?? '')
  return m === null ? undefined : m[1].toLowerCase()
}

/** One export in progress. */
class ExportRun {
  readonly deps: RepositoryDeps
  readonly repo: RepositoryStore
  readonly sameStore: boolean
  readonly signal: AbortSignal | undefined
  readonly counts: TransferCounts
  known = new Map<string, EntryFile>()
  readonly present: RepositoryFiles

  constructor(deps: RepositoryDeps, repo: RepositoryStore, sameStore: boolean, options: ExportSnapshotOptions) {
    this.deps = deps
    this.repo = repo
    this.sameStore = sameStore
    this.signal = options.signal
    this.counts = new TransferCounts(options.onProgress)
    this.present = new RepositoryFiles(repo)
  }

  /** A small object of the snapshot (metadata JSON, a manifest), read from the source. */
  async read(sourceKey: string): Promise<Uint8Array> {
    const bytes = await this.deps.ctx.objects.get(sourceKey, { signal: this.signal })
    if (bytes === undefined) throw new SnapshotError('CORRUPT', `${sourceKey} of the snapshot is missing`, { details: { missing: [sourceKey] } })
    return bytes
  }

  /** Small bytes (the metadata JSON, the manifest pack), put unless the repository has them. */
  async small(bytes: Uint8Array): Promise<EntryObject> {
    const sha256 = sha256Hex(bytes)
    const key = fileKey(sha256)
    if (!(await this.present.has(key, bytes.byteLength, this.signal))) await this.repo.put(key, bytes, { signal: this.signal })
    return { key, size: bytes.byteLength, sha256 }
  }

  /** A segment or index file: skipped when the repository has it, else copied (streamed, or server-side). */
  async file(file: SegmentFile): Promise<EntryFile> {
    const { signal } = this
    const objects = this.deps.ctx.objects
    const head = await objects.head(file.key, { signal })
    if (head === undefined) throw new SnapshotError('CORRUPT', `file ${file.key} of the snapshot is missing`, { details: { missing: [file.key] } })
    if (head.size !== file.size) {
      throw new SnapshotError('CORRUPT', `file ${file.key} of the snapshot is ${head.size} bytes, ${file.size} recorded`, { details: { corrupt: [file.key] } })
    }
    const known = this.known.get(file.key)
    let sha256 = known !== undefined && known.size === head.size && known.modifiedAt === head.lastModified ? known.sha256 : hostSha256(file)
    /** The file's bytes when hashing read them as one chunk: uploaded as they are, not read again. */
    let whole: Uint8Array | undefined
    if (sha256 === undefined) {
      const body = await readObjectStream(objects, file.key, { signal })
      if (body === undefined) throw new SnapshotError('CORRUPT', `file ${file.key} of the snapshot is missing`, { details: { missing: [file.key] } })
      const hashed = await hashStream(body)
      if (hashed.size !== file.size) throw new SnapshotError('CORRUPT', `file ${file.key} of the snapshot is ${hashed.size} bytes, ${file.size} recorded`, { details: { corrupt: [file.key] } })
      sha256 = hashed.sha256
      whole = hashed.whole
    }
    const key = fileKey(sha256)
    const entry: EntryFile = { path: file.key, key, size: file.size, sha256, modifiedAt: head.lastModified }
    if (await this.present.has(key, file.size, signal)) {
      this.counts.skipped(file.size)
      return entry
    }
    if (this.sameStore) {
      const copied = await objects.copy(file.key, this.repo.full(key), { signal })
      if (copied.size !== file.size) {
        await this.repo.delete([key]).catch(() => undefined)
        throw new SnapshotError('CORRUPT', `file ${file.key} changed while it was exported`, { details: { corrupt: [file.key] } })
      }
    } else if (whole !== undefined) {
      // The bytes that were hashed: the key names exactly them.
      await this.repo.put(key, whole, { signal })
    } else {
      const body = await readObjectStream(objects, file.key, { signal })
      if (body === undefined) throw new SnapshotError('CORRUPT', `file ${file.key} of the snapshot is missing`, { details: { missing: [file.key] } })
      await this.repo.writeStream(key, verifiedBody(body, { size: file.size, sha256 }, file.key), { signal, sizeBytes: file.size })
    }
    this.counts.copied(file.size)
    return entry
  }
}

/** The segment and index files of a loaded snapshot, each once, and its manifests' keys by segment. */
async function snapshotFiles(loaded: LoadedSnapshot, signal: AbortSignal | undefined): Promise<SegmentFile[]> {
  const files = new Map<string, SegmentFile>()
  for await (const seg of loaded.segments({ signal })) {
    for (const { file } of segmentFiles(seg)) if (!files.has(file.key)) files.set(file.key, file)
  }
  return [...files.values()]
}

/** What an entry names besides the files: the metadata JSON, the manifest pack and each manifest's place in it. */
interface SmallObjects {
  metadata: EntryObject
  manifestPack: EntryObject
  manifests: EntryManifest[]
}

/** Exports the committed snapshot `name` into the repository at `options.to` / `options.prefix`. */
export async function exportSnapshot(deps: RepositoryDeps, name: string, options: ExportSnapshotOptions): Promise<ExportReport> {
  validateSnapshotName(name, 'snapshotName')
  const prefix = validateOptions(options)
  const { signal } = options
  const { ctx } = deps
  const sameStore = options.to === deps.rawObjects || options.to === ctx.objects
  if (sameStore && (prefix === '' || `${prefix}/`.startsWith(FILES_PREFIX) || `${prefix}/`.startsWith(SNAPSHOTS_PREFIX))) {
    throw new SnapshotError('INVALID_ARGUMENT', `a repository in the manager's own ObjectStore needs a prefix outside ${FILES_PREFIX} and ${SNAPSHOTS_PREFIX} (GC owns those), got ${JSON.stringify(prefix)}`)
  }
  throwIfAborted(signal)
  const started = Date.now()
  const repo = new RepositoryStore(options.to, prefix)
  // Refuse an unknown repository format before holding anything.
  await repo.readInfo({ signal })
  const tag = `${EXPORT_HOLD_TAG_PREFIX}${randomUUID()}`
  await deps.snapshots.hold(name, { tag, ttlMs: EXPORT_HOLD_TTL_MS, signal })
  const renew = setInterval(() => {
    deps.snapshots.hold(name, { tag, ttlMs: EXPORT_HOLD_TTL_MS }).catch(() => undefined)
  }, EXPORT_HOLD_TTL_MS / 3)
  renew.unref()
  let lock: RepositoryLock | undefined
  try {
    await repo.initInfo(ctx.now(), { signal })
    // Shared with other exports; no prune runs meanwhile (see repository-lock.ts).
    lock = await RepositoryLock.acquire(repo, 'export', () => ctx.now(), { signal })
    const storeId = await storeIdOf(ctx, { signal })
    const loaded = await deps.snapshots.load(name, { signal })
    const { info, list } = loaded
    const id = repositorySnapshotIdOf(storeId, info)
    const run = new ExportRun(deps, repo, sameStore, options)
    run.known = await knownFiles(repo, storeId, info.collectionId, signal)
    const files = await snapshotFiles(loaded, signal)
    const wanted = new Set<string>()
    for (const f of files) {
      const sha256 = run.known.get(f.key)?.sha256 ?? hostSha256(f)
      if (sha256 !== undefined) wanted.add(fileKey(sha256))
    }
    await run.present.prepare(files.length + 2, wanted, signal)
    run.counts.totalFiles = files.length
    run.counts.totalBytes = files.reduce((n, f) => n + f.size, 0)
    /** The metadata JSON and the manifests, back to back in list order as one object: one upload, not one per segment. */
    const smallObjects = async (): Promise<SmallObjects> => {
      const metadata = await run.small(await run.read(layout.snapshotMetadata(info.collectionId, info.id)))
      const manifestBytes: Uint8Array[] = new Array(list.count)
      await forEachLimit(Array.from({ length: list.count }, (_, i) => i), READ_CONCURRENCY, async (i) => {
        manifestBytes[i] = await run.read(list.manifestKey(i))
      }, signal)
      const manifests: EntryManifest[] = new Array(list.count)
      let offset = 0
      manifestBytes.forEach((bytes, i) => {
        manifests[i] = { segmentId: list.segmentIds[i], offset, size: bytes.byteLength, sha256: sha256Hex(bytes) }
        offset += bytes.byteLength
      })
      return { metadata, manifestPack: await run.small(Buffer.concat(manifestBytes)), manifests }
    }
    // The small objects take one transfer slot while the first files copy. Their job resolves
    // `small`, and forEachLimit resolves only after every job succeeded: awaited then, it is settled.
    let smallDone!: (small: SmallObjects) => void
    const small = new Promise<SmallObjects>((resolve) => (smallDone = resolve))
    const entryFiles: EntryFile[] = new Array(files.length)
    const jobs = [async () => smallDone(await smallObjects()), ...files.map((f, i) => async () => {
      entryFiles[i] = await run.file(f)
    })]
    await forEachLimit(jobs, TRANSFER_CONCURRENCY, (job) => job(), signal)
    const { metadata, manifestPack, manifests } = await small
    throwIfAborted(signal)
    const entry: RepositoryEntry = {
      vecsnapEntry: ENTRY_FORMAT_VERSION,
      id,
      exportedAt: ctx.now(),
      source: { storeId, snapshotId: info.id, collectionId: info.collectionId },
      snapshot: {
        name: info.name,
        description: info.description,
        collectionName: info.collectionName,
        createdAt: info.createdAt,
        segmentCount: info.segmentCount,
        rowCount: info.rowCount,
        sizeBytes: info.sizeBytes,
      },
      metadata,
      manifestPack,
      manifests,
      files: entryFiles,
    }
    // Last: the entry makes the export visible, once everything it names is in place (and
    // no prune can have deleted a file it found in place).
    lock.assertFresh()
    await repo.put(entryKey(id), encodeEntry(entry), { signal })
    // Then the pointer the next export of this collection starts from (last writer wins: a hint).
    const pointer = sourcePointerKey(storeId, info.collectionId)
    // A hint only: failing to write it does not fail an export whose entry is in place.
    if (pointer !== undefined) await repo.put(pointer, encodeSourcePointer(id), { signal }).catch(() => undefined)
    const { copiedFiles, skippedFiles, copiedBytes, skippedBytes } = run.counts
    return { snapshotName: name, repositorySnapshotId: id, copiedFiles, skippedFiles, copiedBytes, skippedBytes, timeCostMs: Date.now() - started }
  } finally {
    await lock?.release()
    clearInterval(renew)
    await deps.snapshots.release(name, tag).catch(() => undefined)
  }
}
