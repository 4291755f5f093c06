import { describe, expect, it } from 'vitest'
import { keys } from '../../src/meta/keys.js'
import { prefixRange } from '../../src/meta/meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { MemoryObjects } from '../helpers/memory-objects.js'

/**
 * Review finding: forgetting a dropped partition read every segment it held inside one
 * transaction, so on a store that checks reads at commit (etcd; MapMetaStore here, with
 * the suite's 64-expectation limit) a partition of more than ~64 segments was never
 * forgotten and the pass rejected after deleting objects.
 */
describe('GC of a dropped partition of many segments on a store with shared batches', () => {
  it('forgets the partition in bounded transactions', async () => {
    const meta = new MapMetaStore({ data: new Map() })
    const objects = new MemoryObjects()
    const manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0, dropGraceMs: 0, orphanGraceMs: 0 })
    await manager.open()
    try {
      const c = await manager.catalog.createCollection({ name: 'docs', schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }] }, partitionNames: ['_default', 'p1'] })
      const fieldId = c.schema.fields[0].fieldId
      for (let i = 0; i < 150; i++) {
        const seg = await manager.catalog.allocSegment({ collection: 'docs', partition: 'p1' })
        const key = `files/host/p1/${i}`
        await objects.put(key, new Uint8Array(8))
        await manager.catalog.flushSegment(seg.id, { numRows: 1, binlogs: [{ fieldId, files: [{ key, size: 8 }] }] })
      }
      await manager.catalog.dropPartition('docs', 'p1')
      const report = await manager.runGc()
      expect(report.deletedObjects).toBe(150)
      const left: string[] = []
      for await (const [key] of meta.iterate(prefixRange(keys.droppedPartitionPrefix(c.id)))) left.push(key)
      expect(left).toEqual([])
      expect(await manager.catalog.listSegments('docs')).toEqual([])
    } finally {
      await manager.close()
    }
  })
})
