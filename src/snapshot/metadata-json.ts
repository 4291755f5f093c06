import { SnapshotError } from '../errors.js'
import type { ObjectStore } from '../storage/object-store.js'
import { readObjectStream } from '../storage/streaming.js'
import type { AbortOptions } from '../types.js'
import type { CollectionSchema, IndexInfo, PartitionInfo } from '../catalog-types.js'

/**
 * The snapshot metadata object, `snapshots/{collectionId}/metadata/{snapshotId}.json`:
 * what the snapshot is, the collection as captured and the paths of its segment
 * manifests (SPEC section 5). Versioned by `formatVersion`.
 */

/** The metadata format version this build writes and reads. */
export const METADATA_FORMAT_VERSION = 1

/** The collection as a snapshot captured it. */
export interface SnapshotCollectionMetadata {
  id: number
  name: string
  /** Schema with field IDs. */
  schema: CollectionSchema
  shardsNum: number
  channels: string[]
  partitions: PartitionInfo[]
  properties: Record<string, string>
  createdAt: number
}

/** The decoded metadata JSON of a snapshot (format version 1). */
export interface SnapshotMetadata {
  formatVersion: 1
  snapshot: {
    id: number
    name: string
    description: string
    collectionId: number
    collectionName: string
    createdAt: number
    segmentCount: number
    rowCount: number
    sizeBytes: number
  }
  collection: SnapshotCollectionMetadata
  /** Index definitions (live at snapshot time), with their IDs. */
  indexes: IndexInfo[]
  /** Captured segment IDs, in manifest order. */
  segmentIds: number[]
  /**
   * Object keys of the segment manifests, one per segment in `segmentIds` order. A key
   * may belong to an earlier snapshot of the same collection (manifests are shared
   * while their segment is unchanged).
   */
  manifests: string[]
}

/** Serializes metadata to UTF-8 JSON bytes. */
export function encodeMetadata(metadata: SnapshotMetadata): Uint8Array {
  return Buffer.from(JSON.stringify(metadata))
}

function corrupt(key: string, why: string, cause?: unknown): SnapshotError {
  return new SnapshotError('CORRUPT', `snapshot metadata ${key} is unreadable: ${why}`, { cause, details: { key } })
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Parses metadata bytes. `UNSUPPORTED_VERSION` when `formatVersion` is not one this build
 * reads; `CORRUPT` when the bytes are not JSON or lack a required part.
 * @param key The object key, for error messages.
 */
export function decodeMetadata(bytes: Uint8Array, key = 'metadata'): SnapshotMetadata {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch (err) {
    throw corrupt(key, 'not JSON', err)
  }
  if (!isObject(value)) throw corrupt(key, 'not a JSON object')
  if (value.formatVersion !== METADATA_FORMAT_VERSION) {
    throw new SnapshotError(
      'UNSUPPORTED_VERSION',
      `snapshot metadata ${key} has formatVersion ${JSON.stringify(value.formatVersion)}; this vecsnap reads ${METADATA_FORMAT_VERSION}`,
      { details: { key, formatVersion: value.formatVersion } },
    )
  }
  const { snapshot, collection, indexes, segmentIds, manifests } = value
  if (!isObject(snapshot) || typeof snapshot.id !== 'number' || typeof snapshot.name !== 'string') throw corrupt(key, 'no snapshot part')
  if (!isObject(collection) || !isObject(collection.schema) || !Array.isArray(collection.schema.fields) || !Array.isArray(collection.partitions)) {
    throw corrupt(key, 'no collection part')
  }
  if (!Array.isArray(indexes)) throw corrupt(key, 'no indexes')
  if (!Array.isArray(manifests) || !manifests.every((m) => typeof m === 'string')) throw corrupt(key, 'no manifest list')
  if (!Array.isArray(segmentIds) || segmentIds.length !== manifests.length) throw corrupt(key, 'segment IDs do not match the manifest list')
  return value as unknown as SnapshotMetadata
}

/** How this build writes the start of every metadata JSON (`formatVersion` first). */
const VERSION_PREFIX = /^\{"formatVersion":(\d+)[,}]/

/** Chunks as one Buffer (the chunk itself when there is one). */
function joined(parts: Buffer[]): Buffer {
  return parts.length === 1 ? parts[0] : Buffer.concat(parts)
}

/** Bytes of the start of a metadata JSON that tell its version (see `VERSION_PREFIX`). */
const VERSION_HEAD_BYTES = 64

/**
 * Checks the format version of the metadata JSON `r` names without reading its segment
 * lists when it starts the way this build writes it (`{"formatVersion":1,`): only its
 * first chunk is read (a large object is streamed in chunks). Any other shape is read and
 * decoded whole. `UNSUPPORTED_VERSION` for an unknown version, `CORRUPT` when the object
 * is missing or does not decode.
 */
export async function readMetadataVersion(objects: ObjectStore, r: { name: string; metadataKey: string }, options: AbortOptions = {}): Promise<void> {
  const chunks = await readObjectStream(objects, r.metadataKey, options)
  if (chunks === undefined) {
    throw new SnapshotError('CORRUPT', `snapshot ${r.name}: metadata ${r.metadataKey} is missing`, { details: { missing: [r.metadataKey] } })
  }
  const parts: Buffer[] = []
  let size = 0
  let version: number | undefined
  let looked = false
  for await (const chunk of chunks) {
    parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    size += chunk.byteLength
    if (looked || size < VERSION_HEAD_BYTES) continue
    looked = true
    const m = VERSION_PREFIX.exec(joined(parts).toString('latin1', 0, VERSION_HEAD_BYTES))
    if (m === null) continue
    version = Number(m[1])
    break
  }
  if (version === undefined) {
    const bytes = joined(parts)
    const m = looked ? null : VERSION_PREFIX.exec(bytes.toString('latin1', 0, VERSION_HEAD_BYTES))
    if (m === null) {
      decodeMetadata(bytes, r.metadataKey)
      return
    }
    version = Number(m[1])
  }
  if (version !== METADATA_FORMAT_VERSION) {
    throw new SnapshotError('UNSUPPORTED_VERSION', `snapshot metadata ${r.metadataKey} has formatVersion ${version}; this vecsnap reads ${METADATA_FORMAT_VERSION}`, {
      details: { key: r.metadataKey, formatVersion: version },
    })
  }
}
