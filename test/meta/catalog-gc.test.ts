import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { Catalog } from '../../src/meta/catalog.js'
import type { SegmentInfo } from '../../src/meta/catalog-types.js'
import { keys } from '../../src/meta/keys.js'
import { backends, Clock, code, dump, file, flushed, rejectsCleanly, seedDocs, type TestStore } from './catalog-env.js'

async function all(catalog: Catalog): Promise<SegmentInfo[]> {
  const out: SegmentInfo[] = []
  for await (const s of catalog.listAllSegments()) out.push(s)
  return out
}

describe.each(backends)('Catalog GC support on $name', (backend) => {
  let store: TestStore
  let catalog: Catalog
  let clock: Clock

  beforeEach(async () => {
    store = await backend.make()
    clock = new Clock()
    catalog = Catalog.over(store.meta, { now: clock.now })
  })

  afterEach(async () => {
    await store.dispose()
  })

  it('listAllSegments streams every record of every collection, dropped collections included', async () => {
    await seedDocs(catalog, 'a')
    await seedDocs(catalog, 'b')
    const a1 = await flushed(catalog, 'a', 'x')
    const b1 = await catalog.allocSegment({ collection: 'b' })
    const a2 = await flushed(catalog, 'a', 'y')
    await catalog.dropSegment(a2.id)
    await catalog.dropCollection('b')
    const segs = await all(catalog)
    expect(segs.map((s) => [s.id, s.state])).toEqual([[a1.id, 'flushed'], [b1.id, 'dropped'], [a2.id, 'dropped']])
  })

  it('forgetSegments removes dropped records only, all or nothing', async () => {
    const coll = await seedDocs(catalog)
    const live = await flushed(catalog, 'docs', 'live')
    const gone = await flushed(catalog, 'docs', 'gone')
    await catalog.dropSegment(gone.id)
    await rejectsCleanly(store.meta, () => catalog.forgetSegments([gone.id, live.id]), 'FAILED_PRECONDITION')
    await rejectsCleanly(store.meta, () => catalog.forgetSegments([0]), 'INVALID_ARGUMENT')
    await rejectsCleanly(store.meta, () => catalog.forgetSegments(gone.id as never), TypeError)
    expect(await catalog.forgetSegments([gone.id, 9999, gone.id])).toBe(1)
    await expect(catalog.getSegment(gone.id)).rejects.toEqual(code('NOT_FOUND'))
    expect(await store.meta.get(keys.collectionSegment(coll.id, gone.id))).toBeUndefined()
    expect((await catalog.listSegments('docs')).map((s) => s.id)).toEqual([live.id])
    expect(await catalog.forgetSegments([gone.id])).toBe(0)
  })

  it('forgets a dropped collection: record and index definitions; its segments separately', async () => {
    const coll = await seedDocs(catalog)
    const seg = await flushed(catalog, 'docs', 's')
    await seedDocs(catalog, 'keep')
    await catalog.dropCollection('docs')
    expect(await catalog.listDroppedCollections()).toEqual([{ id: coll.id, name: 'docs', droppedAt: clock.t }])
    expect(await catalog.listDroppedIndexes({ collectionId: coll.id })).toHaveLength(1)
    expect(await catalog.forgetDroppedCollection(coll.id)).toBe(true)
    expect(await catalog.listDroppedCollections()).toEqual([])
    expect(await catalog.listDroppedIndexes()).toEqual([])
    expect((await dump(store.meta)).filter(([k]) => k.startsWith(keys.indexPrefix(coll.id)))).toEqual([])
    expect(await catalog.listIndexes('keep')).toHaveLength(1)
    expect((await all(catalog)).map((s) => s.id)).toEqual([seg.id])
    expect(await catalog.forgetSegments([seg.id])).toBe(1)
    expect(await catalog.forgetDroppedCollection(coll.id)).toBe(false)
  })

  it('forgetIndex strips a dropped index’s builds from segments, refuses a live one', async () => {
    const coll = await seedDocs(catalog)
    const seg = await flushed(catalog, 'docs', 's')
    const build = await catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file('ix/HNSW')] })
    const text = await catalog.addTextIndex(seg.id, { fieldId: 102, files: [file('text/index')] })
    await rejectsCleanly(store.meta, () => catalog.forgetIndex(coll.id, build.indexId), 'FAILED_PRECONDITION')
    await catalog.dropIndex('docs', 'vec_idx')
    const [dropped] = await catalog.listDroppedIndexes()
    expect(dropped).toMatchObject({ id: build.indexId, collectionId: coll.id, droppedAt: clock.t })
    // The build stays on the segment until GC forgets the index.
    expect((await catalog.getSegment(seg.id)).indexes).toEqual([build])
    expect(await catalog.forgetIndex(coll.id, build.indexId)).toBe(true)
    expect(await catalog.getSegment(seg.id)).toMatchObject({ indexes: [], textIndexes: [text] })
    expect(await catalog.listDroppedIndexes()).toEqual([])
    expect(await catalog.forgetIndex(coll.id, build.indexId)).toBe(false)
  })

  it('lists and forgets replaced builds', async () => {
    await seedDocs(catalog)
    const seg = await flushed(catalog, 'docs', 's')
    const b1 = await catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file('b1/HNSW')] })
    const j1 = await catalog.addJsonKeyIndex(seg.id, { fieldId: 103, files: [file('j1/keys')] })
    await catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file('b2/HNSW')] })
    await catalog.addJsonKeyIndex(seg.id, { fieldId: 103, files: [file('j2/keys')] })
    const builds = await catalog.listDroppedBuilds()
    expect(builds.map((b) => [b.buildId, b.kind, b.files])).toEqual([
      [b1.buildId, 'index', b1.files],
      [j1.buildId, 'jsonKeyIndex', j1.files],
    ])
    await catalog.forgetDroppedBuilds([b1.buildId])
    expect((await catalog.listDroppedBuilds()).map((b) => b.buildId)).toEqual([j1.buildId])
    await rejectsCleanly(store.meta, () => catalog.forgetDroppedBuilds([-1]), 'INVALID_ARGUMENT')
  })
})
