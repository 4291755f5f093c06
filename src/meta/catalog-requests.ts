import { SnapshotError } from '../errors.js'
import type { AddFieldIndexRequest, AddSegmentIndexRequest, AllocSegmentRequest, CompactRequest, CreateCollectionRequest, CreateIndexRequest, SegmentFile } from '../catalog-types.js'
import type { NewCollection, NewIndex } from './catalog-collections.js'
import { MAX_COMPACT_SOURCES, type Compaction, type NewSegment } from './catalog-segments.js'
import {
  DEFAULT_PARTITION,
  expectArray,
  expectObject,
  expectString,
  invalid,
  validateBuildFiles,
  validateCount,
  validateId,
  validateLevel,
  validateName,
  validatePartitionNames,
  validateSchema,
  validateSegmentData,
  validateShardsNum,
  validateStringRecord,
} from './catalog-validate.js'

/**
 * The requests of the Catalog's calls, checked and turned into what their transactions
 * take, in the order the caller reads them: a `TypeError` for misuse, `INVALID_ARGUMENT`
 * for a bad value, before any transaction starts.
 * @internal
 */

/** The `count` of `allocIds`: an integer from 1 to 1,000,000. */
export function idCount(count: unknown): number {
  if (typeof count !== 'number') throw new TypeError(`Expected \`count\` to be a number, got \`${typeof count}\``)
  if (!Number.isSafeInteger(count) || count < 1 || count > 1_000_000) {
    throw new SnapshotError('INVALID_ARGUMENT', `count must be an integer from 1 to 1000000, got ${count}`)
  }
  return count
}

/** The collection a `createCollection` request names, its creation time left to the caller. */
export function newCollection(request: CreateCollectionRequest): Omit<NewCollection, 'createdAt'> {
  return {
    name: validateName(request.name, 'collection'),
    schema: validateSchema(request.schema),
    shardsNum: validateShardsNum(request.shardsNum),
    partitionNames: validatePartitionNames(request.partitionNames),
    properties: validateStringRecord(request.properties, 'properties'),
  }
}

/** The index definition a `createIndex` request names. */
export function newIndex(request: CreateIndexRequest): NewIndex {
  expectObject(request, 'request')
  expectString(request.fieldName, 'fieldName')
  return { fieldName: request.fieldName, indexName: validateName(request.indexName, 'index'), params: validateStringRecord(request.params, 'params') }
}

/** The segment an `allocSegment` request asks for: partition `_default` unless named. */
export function newSegment(request: AllocSegmentRequest): NewSegment {
  const o = {
    collection: validateName(request.collection, 'collection', 'collection'),
    partition: request.partition === undefined ? DEFAULT_PARTITION : validateName(request.partition, 'partition', 'partition'),
    channel: request.channel,
    level: validateLevel(request.level),
  }
  if (o.channel !== undefined) expectString(o.channel, 'channel')
  return o
}

/** The index and files of an `addSegmentIndex` request. */
export function segmentIndexBuild(request: AddSegmentIndexRequest): { indexName: string; files: SegmentFile[] } {
  expectObject(request, 'request')
  return { indexName: validateName(request.indexName, 'index'), files: validateBuildFiles(request.files, 'files') }
}

/** The field and files of an `addTextIndex` or `addJsonKeyIndex` request. */
export function fieldIndexBuild(request: AddFieldIndexRequest): { fieldId: number; files: SegmentFile[] } {
  expectObject(request, 'request')
  return { fieldId: validateCount(request.fieldId, 'fieldId'), files: validateBuildFiles(request.files, 'files') }
}

/** The compaction a `compact` request asks for: 1 to {@link MAX_COMPACT_SOURCES} distinct sources. */
export function compaction(request: CompactRequest): Compaction {
  const collection = validateName(request.collection, 'collection', 'collection')
  expectArray(request.sources, 'sources')
  if (request.sources.length === 0) throw invalid('`sources` must list at least one segment')
  if (request.sources.length > MAX_COMPACT_SOURCES) {
    throw invalid(`\`sources\` lists ${request.sources.length} segments; one compaction takes at most ${MAX_COMPACT_SOURCES} (compact more in several calls)`)
  }
  const sources = request.sources.map((s, i) => validateId(s, `sources[${i}]`))
  if (new Set(sources).size !== sources.length) throw invalid('`sources` lists a segment twice')
  const result = validateSegmentData(request.result, 'result')
  const level = validateLevel(request.level)
  return { collection, sources, result, level }
}

/** A list of IDs, each checked and named by its place (`ids[2]`). */
export function idList(ids: unknown, name: string): number[] {
  expectArray(ids, name)
  return ids.map((id, i) => validateId(id, `${name}[${i}]`))
}
