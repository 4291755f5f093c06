import { SnapshotError } from '../errors.js'
import type {
  CollectionInfo,
  CollectionSchema,
  CollectionState,
  IndexInfo,
  PartitionInfo,
} from '../catalog-types.js'
import { DEFAULT_PARTITION, invalid } from './catalog-validate.js'
import { keys } from './keys.js'
import {
  bumpCollectionVersion,
  bumpDropEpoch,
  readCollectionByName,
  readCollectionVersion,
  readIndexRecords,
  requireCollection,
  writeCollection,
  writeDroppedCollection,
  writeDroppedPartition,
  writeIndexRecord,
  type IndexRecord,
} from './records.js'
import type { MetaTxn } from './transaction.js'

/**
 * Collection, partition and index mutations of the Catalog, each a step inside a caller's
 * {@link MetaTxn} (the Catalog runs one per transaction; restore composes them with its
 * own records). Inputs are already validated.
 * @internal
 */

/** Virtual channel names of a collection, one per shard (the scheme restore uses too). */
export function channelNames(collectionId: number, shardsNum: number): string[] {
  return Array.from({ length: shardsNum }, (_, i) => `vecsnap-dml_${i}_${collectionId}v${i}`)
}

/** A collection to create, with its schema already carrying field IDs. */
export interface NewCollection {
  name: string
  schema: CollectionSchema
  shardsNum: number
  /** Partition names, `_default` included; IDs are allocated in this order. */
  partitionNames: string[]
  properties: Record<string, string>
  /** Index definitions to create with the given IDs (restore keeps the source's). Default none. */
  indexes?: IndexInfo[]
  /** Default `created`; restore creates its target `restoring`. */
  state?: CollectionState
  createdAt: number
}

/** `ALREADY_EXISTS` ("collection already exists"). */
export function collectionExists(name: string): SnapshotError {
  return new SnapshotError('ALREADY_EXISTS', `collection already exists: ${name}`)
}

/** The collection named `name`, unless it is being restored into (`FAILED_PRECONDITION`); `NOT_FOUND` if absent. */
export async function requireWritableCollection(tx: MetaTxn, name: string, action: string): Promise<CollectionInfo> {
  const c = await requireCollection(tx, name)
  if (c.state === 'restoring') {
    throw new SnapshotError('FAILED_PRECONDITION', `cannot ${action}: collection ${name} is being restored into (the restore job owns it until it finishes)`)
  }
  return c
}

/**
 * Creates a collection in `tx`: `ALREADY_EXISTS` when the name is taken (in any state),
 * then allocates the collection ID and, after it, one ID per partition, and writes the
 * collection, its name and its index definitions.
 */
export async function createCollectionTx(tx: MetaTxn, spec: NewCollection): Promise<CollectionInfo> {
  if ((await readCollectionByName(tx, spec.name)) !== undefined) throw collectionExists(spec.name)
  const base = await tx.allocIds(1 + spec.partitionNames.length)
  const collection: CollectionInfo = {
    id: base,
    name: spec.name,
    schema: structuredClone(spec.schema),
    shardsNum: spec.shardsNum,
    channels: channelNames(base, spec.shardsNum),
    partitions: spec.partitionNames.map((name, i) => ({ id: base + 1 + i, name })),
    properties: { ...spec.properties },
    createdAt: spec.createdAt,
    state: spec.state ?? 'created',
  }
  writeCollection(tx, collection)
  for (const ix of spec.indexes ?? []) {
    writeIndexRecord(tx, collection.id, { id: ix.id, fieldId: ix.fieldId, name: ix.name, params: { ...ix.params }, createdAt: spec.createdAt })
  }
  return collection
}

/**
 * Drops a collection in `tx`: removes it and its name, marks every index definition
 * dropped at `now` (unless already), records the collection as dropped for GC and bumps
 * its drop epoch. Its segment records are left as they are: they count as `dropped` at
 * `now` (see `segmentAsSeen`), so the batch stays the same size whatever the segment count.
 * `FAILED_PRECONDITION` while a restore owns it.
 */
export async function dropCollectionTx(tx: MetaTxn, name: string, now: number): Promise<void> {
  const c = await requireWritableCollection(tx, name, 'drop the collection')
  await readCollectionVersion(tx, c.id)
  for (const r of await readIndexRecords(tx, c.id)) {
    if (r.droppedAt === undefined) writeIndexRecord(tx, c.id, { ...r, droppedAt: now })
  }
  tx.del(keys.collection(c.id))
  tx.del(keys.collectionName(c.name))
  tx.del(keys.collectionVersion(c.id))
  writeDroppedCollection(tx, { id: c.id, name: c.name, droppedAt: now })
  await bumpDropEpoch(tx, c.id, 'all')
}

/** Adds a partition in `tx` (`ALREADY_EXISTS` when the collection has it). */
export async function createPartitionTx(tx: MetaTxn, collection: string, partitionName: string): Promise<PartitionInfo> {
  const c = await requireWritableCollection(tx, collection, 'create a partition')
  if (c.partitions.some((p) => p.name === partitionName)) {
    throw new SnapshotError('ALREADY_EXISTS', `partition already exists: ${collection}/${partitionName}`)
  }
  const partition = { id: await tx.allocIds(1), name: partitionName }
  writeCollection(tx, { ...c, partitions: [...c.partitions, partition] })
  return partition
}

/** `NOT_FOUND` ("partition not found"). */
export function partitionNotFound(collection: string, partitionName: string): SnapshotError {
  return new SnapshotError('NOT_FOUND', `partition not found: ${collection}/${partitionName}`)
}

/**
 * Drops a partition in `tx`: removes it from the collection, records it as dropped for GC
 * and bumps the drop epoch; its segments count as `dropped` at `now` (see
 * `segmentAsSeen`). `_default` cannot be dropped (`INVALID_ARGUMENT`).
 */
export async function dropPartitionTx(tx: MetaTxn, collection: string, partitionName: string, now: number): Promise<void> {
  if (partitionName === DEFAULT_PARTITION) throw invalid(`the ${DEFAULT_PARTITION} partition cannot be dropped`)
  const c = await requireWritableCollection(tx, collection, 'drop a partition')
  const partition = c.partitions.find((p) => p.name === partitionName)
  if (partition === undefined) throw partitionNotFound(collection, partitionName)
  writeCollection(tx, { ...c, partitions: c.partitions.filter((p) => p.id !== partition.id) })
  writeDroppedPartition(tx, { collectionId: c.id, partitionId: partition.id, name: partition.name, droppedAt: now })
  await bumpCollectionVersion(tx, c.id)
  await bumpDropEpoch(tx, c.id, 'all')
}

/** The live (not dropped) index definitions of a collection, by ID. */
export async function readLiveIndexes(tx: MetaTxn, collectionId: number): Promise<IndexRecord[]> {
  await readCollectionVersion(tx, collectionId)
  return (await readIndexRecords(tx, collectionId)).filter((r) => r.droppedAt === undefined)
}

/**
 * Most index definitions a collection holds: live ones and dropped ones GC has not
 * forgotten yet. Dropping the collection marks each live one in its batch, a restore writes
 * them in its accept batch, and a rollback deletes them in one: so each batch stays within
 * 64 operations and expectations (SPEC section 11).
 */
export const MAX_INDEX_DEFINITIONS = 40

/** What `createIndexTx` needs. */
export interface NewIndex {
  fieldName: string
  indexName: string
  params: Record<string, string>
}

/**
 * Creates an index definition in `tx`. `INVALID_ARGUMENT` for an unknown field;
 * `ALREADY_EXISTS` when a live index has the name, or the field already has a live index
 * (Milvus allows one per field).
 */
export async function createIndexTx(tx: MetaTxn, collection: string, ix: NewIndex, now: number): Promise<IndexInfo> {
  const c = await requireWritableCollection(tx, collection, 'create an index')
  const field = c.schema.fields.find((f) => f.name === ix.fieldName)
  if (field === undefined) throw invalid(`collection ${collection} has no field ${JSON.stringify(ix.fieldName)}`)
  await readCollectionVersion(tx, c.id)
  const all = await readIndexRecords(tx, c.id)
  const live = all.filter((r) => r.droppedAt === undefined)
  if (live.some((r) => r.name === ix.indexName)) throw new SnapshotError('ALREADY_EXISTS', `index already exists: ${collection}/${ix.indexName}`)
  const onField = live.find((r) => r.fieldId === field.fieldId)
  if (onField !== undefined) {
    throw new SnapshotError('ALREADY_EXISTS', `field ${ix.fieldName} of ${collection} already has index ${onField.name}; drop it first`)
  }
  if (all.length >= MAX_INDEX_DEFINITIONS) {
    throw new SnapshotError(
      'FAILED_PRECONDITION',
      `collection ${collection} holds ${all.length} index definitions (${live.length} live, the others dropped and not yet collected by GC); at most ${MAX_INDEX_DEFINITIONS}: drop one, or run GC once the drop grace has passed`,
    )
  }
  const record: IndexRecord = { id: await tx.allocIds(1), fieldId: field.fieldId, name: ix.indexName, params: { ...ix.params }, createdAt: now }
  writeIndexRecord(tx, c.id, record)
  await bumpCollectionVersion(tx, c.id)
  return { id: record.id, fieldId: record.fieldId, name: record.name, params: { ...record.params } }
}

/** `NOT_FOUND` ("index not found"). */
export function indexNotFound(collection: string, indexName: string): SnapshotError {
  return new SnapshotError('NOT_FOUND', `index not found: ${collection}/${indexName}`)
}

/** Marks the live index `indexName` dropped at `now` in `tx`; GC collects its files later. */
export async function dropIndexTx(tx: MetaTxn, collection: string, indexName: string, now: number): Promise<void> {
  const c = await requireWritableCollection(tx, collection, 'drop an index')
  const record = (await readLiveIndexes(tx, c.id)).find((r) => r.name === indexName)
  if (record === undefined) throw indexNotFound(collection, indexName)
  writeIndexRecord(tx, c.id, { ...record, droppedAt: now })
  await bumpCollectionVersion(tx, c.id)
  await bumpDropEpoch(tx, c.id, 'all')
}
