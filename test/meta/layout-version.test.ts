import { describe, expect, it } from 'vitest'
import { META_LAYOUT_VERSION, keys } from '../../src/meta/keys.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { MemoryObjects } from '../helpers/memory-objects.js'

/** SPEC section 11: the MetaStore layout is versioned by one key, checked on `open()`. */
describe('MetaStore layout version', () => {
  it('open() writes the version into a new store and opens a store of this version again', async () => {
    const meta = new MemoryMetaStore()
    const first = new SnapshotManager({ meta, objects: new MemoryObjects(), gcIntervalMs: 0 })
    await first.open()
    expect(await meta.get(keys.layoutVersion)).toBe(String(META_LAYOUT_VERSION))
    await first.catalog.createCollection({ name: 'docs', schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }] } })
    await first.close()
    const again = new SnapshotManager({ meta, objects: new MemoryObjects(), gcIntervalMs: 0 })
    await again.open()
    expect((await again.catalog.listCollections()).map((c) => c.name)).toEqual(['docs'])
    await again.close()
  })

  it.each(['1', '3', 'garbage'])('open() of a store with layout %j rejects UNSUPPORTED_VERSION, touching nothing, and leaves the store closed', async (version) => {
    const meta = new MemoryMetaStore()
    await meta.open()
    await meta.batch([{ type: 'put', key: keys.layoutVersion, value: version }])
    await meta.close()
    const manager = new SnapshotManager({ meta, objects: new MemoryObjects(), gcIntervalMs: 0 })
    await expect(manager.open()).rejects.toMatchObject({ name: 'SnapshotError', code: 'UNSUPPORTED_VERSION' })
    expect(meta.status).toBe('closed')
    await meta.open()
    const entries: string[] = []
    for await (const [key] of meta.iterate()) entries.push(key)
    expect(entries).toEqual([keys.layoutVersion])
    await meta.close()
  })

  it('two processes opening a new shared store at once both end up on the one version', async () => {
    const data = new Map<string, string>()
    const managers = [0, 1].map(() => new SnapshotManager({ meta: new MapMetaStore({ data }), objects: new MemoryObjects(), gcIntervalMs: 0 }))
    await Promise.all(managers.map((m) => m.open()))
    expect(data.get(keys.layoutVersion)).toBe(String(META_LAYOUT_VERSION))
    await Promise.all(managers.map((m) => m.close()))
  })
})
