import { SnapshotError } from '../errors.js'
import type { ObjectStore } from '../storage/object-store.js'
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

/**
 * Checks the format version of the metadata JSON `r` names without parsing its segment
 * lists when it starts the way this build writes it (`{"formatVersion":1,`); any other
 * shape is decoded whole. `UNSUPPORTED_VERSION` for an unknown version, `CORRUPT` when the
 * object is missing or does not decode.
 */
export async function readMetadataVersion(objects: ObjectStore, r: { name: string; metadataKey: string }, options: AbortOptions = {}): Promise<void> {
  const bytes = await objects.get(r.metadataKey, options)
  if (bytes === undefined) {
    throw new SnapshotError('CORRUPT', `snapshot ${r.name}: metadata ${r.metadataKey} is missing`, { details: { missing: [r.metadataKey] } })
  }
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 64)).toString('latin1')
  const m = VERSION_PREFIX.exec(head)
  if (m === null) {
    decodeMetadata(bytes, r.metadataKey)
    return
  }
  const version = Number(m[1])
  if (version !== METADATA_FORMAT_VERSION) {
    throw new SnapshotError('UNSUPPORTED_VERSION', `snapshot metadata ${r.metadataKey} has formatVersion ${version}; this vecsnap reads ${METADATA_FORMAT_VERSION}`, {
      details: { key: r.metadataKey, formatVersion: version },
    })
  }
}
