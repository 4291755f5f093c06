import { SnapshotError } from '../errors.js'
import { validateObjectKey } from '../storage/keys-validate.js'

/**
 * The repository format (SPEC section 14; docs/formats.md, "Repositories"). Every key is
 * relative to the repository's prefix:
 *
 * | key | what |
 * |---|---|
 * | `repository.json` | `{ "vecsnapRepository": 1, "id": "<uuid>", "createdAt": ms }` |
 * | `files/{sha256[0:2]}/{sha256}` | every file, named by the SHA-256 of its bytes (hex): segment and index files, metadata JSON, manifests. A file several entries share is stored once. |
 * | `snapshots/{repositorySnapshotId}.json` | one entry per exported snapshot, written after all its files are in place |
 * | `sources/{storeId}/{collectionId}.json` | `{ "vecsnapPointer": 1, "entry": id }`: the entry last exported from a source collection, where the next export of it learns which files it can skip without reading them (a hint: ignored when it does not read back) |
 * | `locks/{uuid}.json` | a lock of an export (shared) or a prune (exclusive) under way: `repository-lock.ts` |
 *
 * An entry (`vecsnapEntry: 1`) holds what the snapshot was (names, counts, times), where it
 * came from (`source`: the exporting store's ID, the snapshot and collection IDs there),
 * its metadata JSON and manifests (`{ key, size, sha256 }`, with the segment ID of each
 * manifest) and every segment and index file: `{ path, key, size, sha256, modifiedAt }`,
 * `path` being the file's key in the source (what the manifests name) and `modifiedAt`
 * its modification time there when it was exported.
 *
 * A repository is untrusted input: everything read is validated here before anything is
 * copied (`CORRUPT`; `UNSUPPORTED_VERSION` for another format version).
 * @internal
 */

/** The repository format this build writes and reads. */
export const REPOSITORY_FORMAT_VERSION = 1

/** The entry format this build writes and reads. */
export const ENTRY_FORMAT_VERSION = 1

/** `repository.json`. */
export const REPOSITORY_INFO_KEY = 'repository.json'

/** Prefix of the content-addressed files. */
export const REPOSITORY_FILES_PREFIX = 'files/'

/** Prefix of the entries. */
export const REPOSITORY_ENTRIES_PREFIX = 'snapshots/'

/** Prefix of the pointers to the latest entry of each source collection. */
export const REPOSITORY_SOURCES_PREFIX = 'sources/'

/** Store IDs that can name a key (the UUIDs vecsnap writes). */
const STORE_ID_RE = /^[A-Za-z0-9-]{1,64}$/

/** The pointer to the latest entry exported from a source collection, or undefined for a store ID that cannot name a key. */
export function sourcePointerKey(storeId: string, collectionId: number): string | undefined {
  return STORE_ID_RE.test(storeId) && Number.isSafeInteger(collectionId) && collectionId >= 0 ? `${REPOSITORY_SOURCES_PREFIX}${storeId}/${collectionId}.json` : undefined
}

/** Encodes a source pointer. */
export function encodeSourcePointer(entryId: string): Uint8Array {
  return Buffer.from(JSON.stringify({ vecsnapPointer: 1, entry: entryId }))
}

/** The entry ID a source pointer names: `CORRUPT` unless it is one, `UNSUPPORTED_VERSION` for another pointer format. */
export function decodeSourcePointer(bytes: Uint8Array, key: string): string {
  const v = parseJson(bytes, key)
  versionOf(v, 'vecsnapPointer', 1, key)
  const id = text(v.entry, key, 'entry')
  if (!isEntryId(id)) throw corrupt(key, '`entry` is not a repository snapshot ID')
  return id
}

/** Prefix of the locks. */
export const REPOSITORY_LOCKS_PREFIX = 'locks/'

/** The lock format this build writes and reads. */
export const LOCK_FORMAT_VERSION = 1

/** What holds a lock: an export (shared with other exports) or a prune (exclusive). */
export type LockKind = 'export' | 'prune'

/** A lock, decoded. */
export interface RepositoryLockRecord {
  vecsnapLock: typeof LOCK_FORMAT_VERSION
  kind: LockKind
  /** When it was taken and last renewed (epoch ms, the holder's clock). */
  createdAt: number
  renewedAt: number
  /** Who holds it (`hostname:pid`), for the error a conflict reports. */
  holder: string
}

/** The repository key of lock `id`. */
export function lockKey(id: string): string {
  return `${REPOSITORY_LOCKS_PREFIX}${id}.json`
}

/** Encodes a lock. */
export function encodeLock(lock: RepositoryLockRecord): Uint8Array {
  return Buffer.from(JSON.stringify(lock))
}

/** Decodes the lock at `key`: `CORRUPT` unless it is one, `UNSUPPORTED_VERSION` for another lock format. */
export function decodeLock(bytes: Uint8Array, key: string): RepositoryLockRecord {
  const v = parseJson(bytes, key)
  versionOf(v, 'vecsnapLock', LOCK_FORMAT_VERSION, key)
  if (v.kind !== 'export' && v.kind !== 'prune') throw corrupt(key, '`kind` is neither "export" nor "prune"')
  return { vecsnapLock: LOCK_FORMAT_VERSION, kind: v.kind, createdAt: count(v.createdAt, key, 'createdAt'), renewedAt: count(v.renewedAt, key, 'renewedAt'), holder: text(v.holder, key, 'holder') }
}

/** `repository.json`, decoded. */
export interface RepositoryInfo {
  vecsnapRepository: typeof REPOSITORY_FORMAT_VERSION
  /** Random UUID given when the repository was created. */
  id: string
  createdAt: number
}

/** A file an entry references. */
export interface EntryObject {
  /** Repository key (under `files/`). */
  key: string
  size: number
  /** SHA-256 of the bytes, lowercase hex. */
  sha256: string
}

/**
 * A manifest of an entry: bytes `[offset, offset + size)` of the entry's manifest pack,
 * with their own SHA-256. The pack holds the manifests back to back in entry order, so
 * `offset` is the sum of the sizes before it.
 */
export interface EntryManifest {
  /** The segment the manifest describes (its ID in the source). */
  segmentId: number
  offset: number
  size: number
  /** SHA-256 of the manifest's bytes, lowercase hex. */
  sha256: string
}

/** A segment or index file an entry references. */
export interface EntryFile extends EntryObject {
  /** The file's key in the source store: the key the manifests name. */
  path: string
  /** Its modification time in the source when exported (epoch ms); lets the next export skip it without reading it. */
  modifiedAt: number
}

/** One exported snapshot: `snapshots/{id}.json`. */
export interface RepositoryEntry {
  vecsnapEntry: typeof ENTRY_FORMAT_VERSION
  /** The repository snapshot ID (the entry's key without `snapshots/` and `.json`). */
  id: string
  exportedAt: number
  source: {
    /** ID of the exporting manager's MetaStore (`v/store-id`). */
    storeId: string
    snapshotId: number
    collectionId: number
  }
  snapshot: {
    name: string
    description: string
    collectionName: string
    createdAt: number
    segmentCount: number
    rowCount: number
    sizeBytes: number
  }
  metadata: EntryObject
  /** Every manifest of the snapshot in one object (one upload per export instead of one per segment). */
  manifestPack: EntryObject
  manifests: EntryManifest[]
  files: EntryFile[]
}

const SHA256_HEX = /^[0-9a-f]{64}$/

/** Repository snapshot IDs: `{snapshotName}-{12 hex}` as exports write them, or any such token. */
const ENTRY_ID_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,299}$/

/** True when `id` has the form of a repository snapshot ID. */
export function isEntryId(id: string): boolean {
  return ENTRY_ID_RE.test(id) && !id.includes('..')
}

/** The repository key of a file with this SHA-256. */
export function fileKey(sha256: string): string {
  return `${REPOSITORY_FILES_PREFIX}${sha256.slice(0, 2)}/${sha256}`
}

/** The repository key of an entry. */
export function entryKey(id: string): string {
  return `${REPOSITORY_ENTRIES_PREFIX}${id}.json`
}

/** The entry ID in an entry key, or undefined for another key. */
export function entryIdOf(key: string): string | undefined {
  if (!key.startsWith(REPOSITORY_ENTRIES_PREFIX) || !key.endsWith('.json')) return undefined
  const id = key.slice(REPOSITORY_ENTRIES_PREFIX.length, -'.json'.length)
  return isEntryId(id) ? id : undefined
}

function corrupt(what: string, why: string): SnapshotError {
  return new SnapshotError('CORRUPT', `repository ${what} is invalid: ${why}`, { details: { key: what } })
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {
    throw corrupt(what, 'not JSON')
  }
  if (!isObject(value)) throw corrupt(what, 'not a JSON object')
  return value
}

function count(v: unknown, what: string, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw corrupt(what, `\`${field}\` is not a non-negative safe integer`)
  return v
}

function text(v: unknown, what: string, field: string): string {
  if (typeof v !== 'string') throw corrupt(what, `\`${field}\` is not a string`)
  return v
}

/** A key of the entry: a valid relative key (no `..`, not absolute) under `files/`. */
function repoKey(v: unknown, what: string, field: string): string {
  const key = text(v, what, field)
  try {
    validateObjectKey(key)
  } catch {
    throw corrupt(what, `\`${field}\` ${JSON.stringify(key.slice(0, 200))} is not a key inside the repository`)
  }
  if (!key.startsWith(REPOSITORY_FILES_PREFIX)) throw corrupt(what, `\`${field}\` ${JSON.stringify(key.slice(0, 200))} is not under ${REPOSITORY_FILES_PREFIX}`)
  return key
}

function object(v: unknown, what: string, field: string): EntryObject {
  if (!isObject(v)) throw corrupt(what, `\`${field}\` is not an object`)
  const sha256 = text(v.sha256, what, `${field}.sha256`)
  if (!SHA256_HEX.test(sha256)) throw corrupt(what, `\`${field}.sha256\` is not a SHA-256 in lowercase hex`)
  return { key: repoKey(v.key, what, `${field}.key`), size: count(v.size, what, `${field}.size`), sha256 }
}

function versionOf(value: Record<string, unknown>, field: string, known: number, what: string): void {
  const v = value[field]
  if (v === known) return
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) {
    throw new SnapshotError('UNSUPPORTED_VERSION', `repository ${what} has format ${v}; this vecsnap reads ${known}`, { details: { key: what, formatVersion: v } })
  }
  throw corrupt(what, `no \`${field}\` format version`)
}

/** Encodes `repository.json`. */
export function encodeRepositoryInfo(info: RepositoryInfo): Uint8Array {
  return Buffer.from(JSON.stringify(info))
}

/** Decodes `repository.json`: `UNSUPPORTED_VERSION` for another format, `CORRUPT` for anything malformed. */
export function decodeRepositoryInfo(bytes: Uint8Array): RepositoryInfo {
  const what = REPOSITORY_INFO_KEY
  const v = parseJson(bytes, what)
  versionOf(v, 'vecsnapRepository', REPOSITORY_FORMAT_VERSION, what)
  const id = text(v.id, what, 'id')
  if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw corrupt(what, '`id` is not an ID')
  return { vecsnapRepository: REPOSITORY_FORMAT_VERSION, id, createdAt: count(v.createdAt, what, 'createdAt') }
}

/** Encodes an entry. */
export function encodeEntry(entry: RepositoryEntry): Uint8Array {
  return Buffer.from(JSON.stringify(entry))
}

/**
 * Decodes and validates the entry stored at `entryKey(id)`: `UNSUPPORTED_VERSION` for another
 * entry format; `CORRUPT` for anything else that is not an entry this build writes: wrong
 * types, sizes that are not non-negative safe integers, hashes that are not SHA-256 hex,
 * keys that leave `files/` (absolute, `..`), a segment count that does not match, files
 * listed twice. Nothing is trusted before this returns.
 */
export function decodeEntry(bytes: Uint8Array, id: string): RepositoryEntry {
  const what = entryKey(id)
  const v = parseJson(bytes, what)
  versionOf(v, 'vecsnapEntry', ENTRY_FORMAT_VERSION, what)
  if (v.id !== id) throw corrupt(what, '`id` is not the ID in its key')
  const exportedAt = count(v.exportedAt, what, 'exportedAt')
  const { source, snapshot } = v
  if (!isObject(source)) throw corrupt(what, '`source` is not an object')
  if (!isObject(snapshot)) throw corrupt(what, '`snapshot` is not an object')
  if (!Array.isArray(v.manifests)) throw corrupt(what, '`manifests` is not an array')
  if (!Array.isArray(v.files)) throw corrupt(what, '`files` is not an array')
  const segmentCount = count(snapshot.segmentCount, what, 'snapshot.segmentCount')
  if (v.manifests.length !== segmentCount) throw corrupt(what, `${v.manifests.length} manifests for ${segmentCount} segments`)
  const manifestPack = object(v.manifestPack, what, 'manifestPack')
  const segments = new Set<number>()
  let packed = 0
  const manifests = v.manifests.map((m: unknown, i: number): EntryManifest => {
    if (!isObject(m)) throw corrupt(what, `\`manifests[${i}]\` is not an object`)
    const segmentId = count(m.segmentId, what, `manifests[${i}].segmentId`)
    if (segments.has(segmentId)) throw corrupt(what, `segment ${segmentId} is listed twice`)
    segments.add(segmentId)
    const offset = count(m.offset, what, `manifests[${i}].offset`)
    const size = count(m.size, what, `manifests[${i}].size`)
    if (offset !== packed) throw corrupt(what, `\`manifests[${i}].offset\` is ${offset}, not ${packed} (manifests are packed back to back)`)
    packed += size
    const sha256 = text(m.sha256, what, `manifests[${i}].sha256`)
    if (!SHA256_HEX.test(sha256)) throw corrupt(what, `\`manifests[${i}].sha256\` is not a SHA-256 in lowercase hex`)
    return { segmentId, offset, size, sha256 }
  })
  if (packed !== manifestPack.size) throw corrupt(what, `the manifests take ${packed} bytes of a ${manifestPack.size}-byte pack`)
  const paths = new Set<string>()
  const files = v.files.map((f: unknown, i: number): EntryFile => {
    const o = object(f, what, `files[${i}]`)
    const rec = f as Record<string, unknown>
    const path = text(rec.path, what, `files[${i}].path`)
    try {
      validateObjectKey(path)
    } catch {
      throw corrupt(what, `\`files[${i}].path\` ${JSON.stringify(path.slice(0, 200))} is not a valid key`)
    }
    if (paths.has(path)) throw corrupt(what, `file ${path} is listed twice`)
    paths.add(path)
    return { path, ...o, modifiedAt: count(rec.modifiedAt, what, `files[${i}].modifiedAt`) }
  })
  return {
    vecsnapEntry: ENTRY_FORMAT_VERSION,
    id,
    exportedAt,
    source: {
      storeId: text(source.storeId, what, 'source.storeId'),
      snapshotId: count(source.snapshotId, what, 'source.snapshotId'),
      collectionId: count(source.collectionId, what, 'source.collectionId'),
    },
    snapshot: {
      name: text(snapshot.name, what, 'snapshot.name'),
      description: text(snapshot.description, what, 'snapshot.description'),
      collectionName: text(snapshot.collectionName, what, 'snapshot.collectionName'),
      createdAt: count(snapshot.createdAt, what, 'snapshot.createdAt'),
      segmentCount,
      rowCount: count(snapshot.rowCount, what, 'snapshot.rowCount'),
      sizeBytes: count(snapshot.sizeBytes, what, 'snapshot.sizeBytes'),
    },
    metadata: object(v.metadata, what, 'metadata'),
    manifestPack,
    manifests,
    files,
  }
}

/** Every file an entry references (metadata JSON, manifest pack, segment and index files). */
export function* entryObjects(entry: RepositoryEntry): Generator<EntryObject> {
  yield entry.metadata
  yield entry.manifestPack
  yield* entry.files
}
