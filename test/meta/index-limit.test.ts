import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MAX_INDEX_DEFINITIONS } from '../../src/meta/catalog-collections.js'
import { code } from '../snapshot/env.js'
import { gcEnv, put, type GcEnv } from '../gc/gc-env.js'

/**
 * A collection holds at most MAX_INDEX_DEFINITIONS index definitions (live, or dropped and
 * not yet forgotten by GC), so that dropping it, restoring it and rolling a restore back
 * each stay one batch within 64 operations: the suite's MetaStores reject a larger one.
 */
describe('index definitions per collection', () => {
  let env: GcEnv
  beforeEach(async () => {
    env = await gcEnv()
  })
  afterEach(async () => {
    await env.dispose()
  })

  const fields = (n: number) => [
    { name: 'pk', dataType: 'Int64' as const, isPrimaryKey: true },
    { name: 'vec', dataType: 'FloatVector' as const, dim: 4 },
    ...Array.from({ length: n }, (_, i) => ({ name: `f${i}`, dataType: 'Int64' as const })),
  ]

  it('at the limit, a collection still snapshots, restores, drops and is collected; one more index is FAILED_PRECONDITION', async () => {
    const { manager } = env
    const c = await manager.catalog.createCollection({ name: 'wide', schema: { fields: fields(MAX_INDEX_DEFINITIONS) } })
    for (let i = 0; i < MAX_INDEX_DEFINITIONS; i++) await manager.catalog.createIndex('wide', { fieldName: `f${i}`, indexName: `ix${i}`, params: {} })
    await expect(manager.catalog.createIndex('wide', { fieldName: 'vec', indexName: 'one_more', params: {} })).rejects.toEqual(code('FAILED_PRECONDITION'))
    const seg = await manager.catalog.allocSegment({ collection: 'wide' })
    await manager.catalog.flushSegment(seg.id, { numRows: 1, binlogs: [{ fieldId: c.schema.fields[0].fieldId, files: [await put(env.objects, `files/insert_log/${c.id}/x/${seg.id}/1`)] }] })
    await manager.createSnapshot({ collectionName: 'wide', snapshotName: 's' })
    await manager.waitForRestore(await manager.restoreSnapshot({ snapshotName: 's', targetCollectionName: 'copy' }))
    expect(await manager.catalog.listIndexes('copy')).toHaveLength(MAX_INDEX_DEFINITIONS)
    await manager.catalog.dropCollection('wide')
    await manager.catalog.dropCollection('copy')
    await manager.dropSnapshot('s')
    await manager.runGc()
    expect(await manager.catalog.listDroppedIndexes()).toEqual([])
    expect(await manager.catalog.listDroppedCollections()).toEqual([])
  })

  it('dropped definitions count until GC forgets them', async () => {
    const { manager } = env
    await manager.catalog.createCollection({ name: 'churn', schema: { fields: fields(1) } })
    for (let i = 0; i < MAX_INDEX_DEFINITIONS; i++) {
      await manager.catalog.createIndex('churn', { fieldName: 'f0', indexName: `ix${i}`, params: {} })
      await manager.catalog.dropIndex('churn', `ix${i}`)
    }
    const err = await manager.catalog.createIndex('churn', { fieldName: 'f0', indexName: 'again', params: {} }).catch((e: unknown) => e)
    expect(err).toEqual(code('FAILED_PRECONDITION'))
    expect((err as Error).message).toMatch(/0 live.*run GC/)
    await manager.runGc()
    await expect(manager.catalog.createIndex('churn', { fieldName: 'f0', indexName: 'again', params: {} })).resolves.toMatchObject({ name: 'again' })
  })
})
