import type { Catalog } from '../../src/index.js'

/**
 * An ID for object keys the database must write *before* the catalog records them: the
 * build slot of an index file key (`addSegmentIndex` allocates the build ID only when it
 * records the files) and the segment slot of a compaction result's binlog keys
 * (`compact` allocates the result's ID when it commits). It comes from the catalog's one
 * persistent allocator, so no segment or build can ever collide with it.
 */
export async function reserveId(catalog: Catalog): Promise<number> {
  return catalog.allocIds(1)
}
