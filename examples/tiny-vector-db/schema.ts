import type { Catalog, CollectionInfo, FieldSchema, IndexInfo } from '../../src/index.js'
import { PK_FIELD, VECTOR_FIELD, type CollectionContext } from './types.js'

/** The two-field schema of a tiny-vector-db collection. */
export function collectionFields(dim: number): FieldSchema[] {
  return [
    { name: PK_FIELD, dataType: 'Int64', isPrimaryKey: true },
    { name: VECTOR_FIELD, dataType: 'FloatVector', dim },
  ]
}

/**
 * Reads a collection's shape from the catalog, so that any collection with this schema
 * works, a restored one included (it has its own IDs, the same field IDs).
 */
export async function loadCollection(catalog: Catalog, name: string): Promise<CollectionContext> {
  const info: CollectionInfo = await catalog.getCollection(name)
  const pk = info.schema.fields.find((f) => f.isPrimaryKey === true)
  const vector = info.schema.fields.find((f) => f.dataType === 'FloatVector')
  if (pk === undefined || pk.dataType !== 'Int64') throw new TypeError(`collection ${name} has no Int64 primary key`)
  if (vector === undefined || vector.dim === undefined) throw new TypeError(`collection ${name} has no FloatVector field with a dim`)
  const indexes: IndexInfo[] = await catalog.listIndexes(name)
  const index = indexes.find((i) => i.fieldId === vector.fieldId && i.params.index_type === 'HNSW')
  const partitionId = info.partitions.find((p) => p.name === '_default')?.id ?? info.partitions[0].id
  return { info, pkFieldId: pk.fieldId, vectorFieldId: vector.fieldId, dim: vector.dim, partitionId, index }
}
