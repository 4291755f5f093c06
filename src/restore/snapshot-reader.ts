import { SnapshotError, throwIfAborted } from '../errors.js'
import type { IndexInfo } from '../meta/catalog-types.js'
import { keys } from '../meta/keys.js'
import type { MetaStore } from '../meta/meta-store.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { ObjectStore } from '../storage/object-store.js'
import { METADATA_FORMAT_VERSION, type SnapshotCollectionMetadata, type SnapshotMetadata } from '../snapshot/metadata-json.js'
import { snapshotNotFound, validateSnapshotName, type SnapshotRecord } from '../snapshot/snapshot-record.js'
import type { AbortOptions } from '../types.js'
import { LazyJson, LazyJsonError, type JsonSpan } from './lazy-json.js'

/**
 * Restore's reads of a snapshot, without its per-segment lists on the heap. A snapshot
 * record (`s/snap/{id}`) and its metadata JSON both list every segment (IDs, manifest
 * keys, sizes, hashes): at 100k segments, parsing them whole puts some 25 MB of small
 * strings on the heap at once, and V8 then lets the heap grow to a multiple of that for
 * the rest of the restore. Here the record is read without its lists, and the metadata's
 * segment list is read a batch at a time, straight from the object's bytes.
 * @internal
 */

/** A snapshot record without its per-segment lists (only its scalar members are parsed). */
export type SnapshotHead = Omit<SnapshotRecord, 'segmentIds' | 'buildIds' | 'manifestKeys' | 'manifestSizes' | 'manifestHashes' | 'deleteKeys'>

/** Parses the members of a record that are not arrays. */
function parseHead(raw: string, key: string): SnapshotHead {
  try {
    const json = new LazyJson(raw)
    const out: Record<string, unknown> = {}
    for (const [name, span] of json.members(json.root)) if (!json.is(span, 'array')) out[name] = json.parse(span)
    if (typeof out.id !== 'number' || typeof out.state !== 'string' || typeof out.metadataKey !== 'string') throw new LazyJsonError('not a snapshot record')
    return out as unknown as SnapshotHead
  } catch (err) {
    if (!(err instanceof LazyJsonError)) throw err
    throw new SnapshotError('CORRUPT', `snapshot record ${key} is unreadable: ${err.message}`, { cause: err, details: { key } })
  }
}

/** Throws `FAILED_PRECONDITION` unless the snapshot is committed. */
function requireCommittedState(head: SnapshotHead, name: string): void {
  if (head.state !== 'committed') throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${name} is ${head.state}, not committed`)
}

/**
 * The committed snapshot named `name`, read outside a transaction. `NOT_FOUND` when
 * absent, `FAILED_PRECONDITION` when pending or deleting.
 */
export async function readCommittedHead(meta: MetaStore, name: string, options: AbortOptions = {}): Promise<SnapshotHead> {
  validateSnapshotName(name)
  throwIfAborted(options.signal)
  const id = await meta.get(keys.snapshotName(name), options)
  const key = id === undefined ? undefined : keys.snapshot(Number(id))
  const raw = key === undefined ? undefined : await meta.get(key, options)
  if (key === undefined || raw === undefined) throw snapshotNotFound(name)
  const head = parseHead(raw, key)
  requireCommittedState(head, name)
  return head
}

/**
 * The committed snapshot named `name`, read inside `tx` (so the job that pins it commits
 * only if the record is unchanged). `NOT_FOUND` / `FAILED_PRECONDITION` as above.
 */
export async function requireCommittedTx(tx: MetaTxn, name: string): Promise<SnapshotHead> {
  validateSnapshotName(name)
  const id = await tx.get(keys.snapshotName(name))
  const key = id === undefined ? undefined : keys.snapshot(Number(id))
  const raw = key === undefined ? undefined : await tx.get(key)
  if (key === undefined || raw === undefined) throw snapshotNotFound(name)
  const head = parseHead(raw, key)
  requireCommittedState(head, name)
  return head
}

/** Source segments `[first, first + segmentIds.length)` of a snapshot, in order. */
export interface SegmentBatch {
  segmentIds: number[]
  manifests: string[]
}

/**
 * A snapshot's metadata JSON with its segment list left in the object's bytes: the
 * small parts (snapshot, collection, index definitions) are parsed, the segment IDs and
 * manifest keys are read in order, a batch at a time, by {@link segments}.
 */
export class MetadataView {
  /** Object key of the metadata JSON. */
  readonly key: string
  readonly snapshot: SnapshotMetadata['snapshot']
  readonly collection: SnapshotCollectionMetadata
  /** Index definitions (live at snapshot time), with their IDs. */
  readonly indexes: IndexInfo[]
  /** Segments the snapshot lists. */
  readonly segmentCount: number
  readonly #json: LazyJson
  readonly #segmentIds: JsonSpan
  readonly #manifests: JsonSpan

  /**
   * Checks the metadata as `decodeMetadata` does: `UNSUPPORTED_VERSION` when
   * `formatVersion` is not one this build reads, `CORRUPT` when the bytes are not JSON or
   * lack a required part.
   */
  constructor(bytes: Uint8Array, key: string) {
    this.key = key
    const corrupt = (why: string, cause?: unknown): SnapshotError =>
      new SnapshotError('CORRUPT', `snapshot metadata ${key} is unreadable: ${why}`, { cause, details: { key } })
    const json = new LazyJson(bytes)
    let members: Map<string, JsonSpan>
    try {
      const root = json.root
      if (!json.is(root, 'object')) throw corrupt('not a JSON object')
      members = json.members(root)
    } catch (err) {
      if (err instanceof LazyJsonError) throw corrupt('not JSON', err)
      throw err
    }
    try {
      const parsed = (name: string): unknown => {
        const span = members.get(name)
        return span === undefined ? undefined : json.parse(span)
      }
      const formatVersion = parsed('formatVersion')
      if (formatVersion !== METADATA_FORMAT_VERSION) {
        throw new SnapshotError(
          'UNSUPPORTED_VERSION',
          `snapshot metadata ${key} has formatVersion ${JSON.stringify(formatVersion)}; this vecsnap reads ${METADATA_FORMAT_VERSION}`,
          { details: { key, formatVersion } },
        )
      }
      const snapshot = parsed('snapshot') as Record<string, unknown> | undefined
      if (!isObject(snapshot) || typeof snapshot.id !== 'number' || typeof snapshot.name !== 'string') throw corrupt('no snapshot part')
      const collection = parsed('collection') as Record<string, unknown> | undefined
      if (!isObject(collection) || !isObject(collection.schema) || !Array.isArray(collection.schema.fields) || !Array.isArray(collection.partitions)) {
        throw corrupt('no collection part')
      }
      const indexes = parsed('indexes')
      if (!Array.isArray(indexes)) throw corrupt('no indexes')
      const manifests = members.get('manifests')
      if (manifests === undefined || !json.is(manifests, 'array')) throw corrupt('no manifest list')
      let count = 0
      for (const m of json.elements(manifests)) {
        if (!json.is(m, 'string')) throw corrupt('no manifest list')
        count++
      }
      const segmentIds = members.get('segmentIds')
      if (segmentIds === undefined || !json.is(segmentIds, 'array')) throw corrupt('segment IDs do not match the manifest list')
      let ids = 0
      for (const _ of json.elements(segmentIds)) ids++
      if (ids !== count) throw corrupt('segment IDs do not match the manifest list')
      this.snapshot = snapshot as unknown as SnapshotMetadata['snapshot']
      this.collection = collection as unknown as SnapshotCollectionMetadata
      this.indexes = indexes as IndexInfo[]
      this.segmentCount = count
      this.#json = json
      this.#segmentIds = segmentIds
      this.#manifests = manifests
    } catch (err) {
      if (err instanceof LazyJsonError) throw corrupt(err.message, err)
      throw err
    }
  }

  /**
   * Reads the segment list in order: each call of `next(count)` returns the next `count`
   * segments (fewer at the end). `CORRUPT` when an entry does not parse.
   */
  segments(): { next(count: number): SegmentBatch } {
    const json = this.#json
    const ids = json.elements(this.#segmentIds)
    const manifests = json.elements(this.#manifests)
    const key = this.key
    return {
      next(count: number): SegmentBatch {
        const out: SegmentBatch = { segmentIds: [], manifests: [] }
        try {
          for (let i = 0; i < count; i++) {
            const id = ids.next()
            const manifest = manifests.next()
            if (id.done === true || manifest.done === true) break
            const segmentId = json.parse(id.value)
            if (typeof segmentId !== 'number') throw new LazyJsonError(`segment ID at ${id.value.start} is not a number`)
            out.segmentIds.push(segmentId)
            out.manifests.push(json.parse(manifest.value) as string)
          }
        } catch (err) {
          if (err instanceof LazyJsonError) throw new SnapshotError('CORRUPT', `snapshot metadata ${key} is unreadable: ${err.message}`, { cause: err, details: { key } })
          throw err
        }
        return out
      },
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Reads the metadata JSON a snapshot record names; `CORRUPT` when absent (see {@link MetadataView} for the checks). */
export async function readMetadataView(objects: ObjectStore, head: Pick<SnapshotHead, 'name' | 'metadataKey'>, options: AbortOptions = {}): Promise<MetadataView> {
  const bytes = await objects.get(head.metadataKey, options)
  if (bytes === undefined) {
    throw new SnapshotError('CORRUPT', `snapshot ${head.name}: metadata ${head.metadataKey} is missing`, { details: { missing: [head.metadataKey] } })
  }
  return new MetadataView(bytes, head.metadataKey)
}
