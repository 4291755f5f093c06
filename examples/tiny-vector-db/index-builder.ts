import type { Catalog, IndexInfo, ObjectStore, SegmentIndexInfo, SegmentInfo } from '../../src/index.js'
import { buildHnsw, hnswParams } from './hnsw.js'
import { reserveId } from './ids.js'
import { putFile, readVectors } from './segment-io.js'
import type { CollectionContext } from './types.js'

/** File name of a segment's serialized HNSW index (the last segment of its key). */
export const HNSW_FILE_NAME = 'HNSW'

/**
 * Builds the HNSW index of one flushed segment from its vector binlog (or from `vectors`
 * when the caller has them at hand), writes it at a `catalog.layout.indexFile` key and
 * records it with `addSegmentIndex`.
 */
export async function buildSegmentIndex(
  catalog: Catalog,
  objects: ObjectStore,
  c: CollectionContext,
  index: IndexInfo,
  segment: SegmentInfo,
  vectors?: Float32Array,
): Promise<SegmentIndexInfo> {
  const data = vectors ?? (await readVectors(objects, segment, c.vectorFieldId))
  const bytes = await buildHnsw(data, hnswParams(c.dim, index.params))
  const buildSlot = await reserveId(catalog)
  const key = catalog.layout.indexFile({ buildId: buildSlot, version: 1, partitionId: segment.partitionId, segmentId: segment.id, fileName: HNSW_FILE_NAME })
  const file = await putFile(objects, key, bytes, { entries: segment.numRows })
  return catalog.addSegmentIndex(segment.id, { indexName: index.name, files: [file] })
}

/** The segment's build of `index`, if it has one. */
export function segmentBuild(segment: SegmentInfo, index: IndexInfo | undefined): SegmentIndexInfo | undefined {
  if (index === undefined) return undefined
  return segment.indexes.find((b) => b.indexId === index.id)
}
