import { describe, expect, it } from 'vitest'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { MemoryObjects } from '../helpers/memory-objects.js'

/**
 * Issue 15, defect 7: a listing never writes. What interrupted writes leave (an
 * `FsObjectStore`'s temporary files) is removed by the GC loop once when it starts, through
 * the store's optional `removeStaleTempFiles`; a failure is a `loopError`, never a crash.
 */
class CleaningObjects extends MemoryObjects {
  cleanups = 0
  fail = false
  async removeStaleTempFiles(): Promise<number> {
    this.cleanups++
    if (this.fail) throw new Error('disk gone')
    return 3
  }
}

describe('stale temporary files', () => {
  it('the GC loop removes them once when it starts, and not on a listing', async () => {
    const objects = new CleaningObjects()
    const manager = new SnapshotManager({ meta: new MemoryMetaStore(), objects, gcIntervalMs: 0 })
    await manager.open()
    await expect.poll(() => objects.cleanups).toBe(1)
    await manager.runGc()
    await manager.runGc()
    expect(objects.cleanups).toBe(1)
    await manager.close()
  })

  it('a failure becomes a loopError', async () => {
    const objects = new CleaningObjects()
    objects.fail = true
    const manager = new SnapshotManager({ meta: new MemoryMetaStore(), objects, gcIntervalMs: 0 })
    const errors: unknown[] = []
    manager.on('loopError', (err) => errors.push(err))
    await manager.open()
    await expect.poll(() => errors.length).toBe(1)
    expect(errors[0]).toMatchObject({ code: 'IO_ERROR', message: expect.stringContaining('disk gone') })
    await manager.close()
  })
})
