import { describe, expect, it } from 'vitest'
import type { Catalog } from '../../src/meta/catalog.js'
import type { SegmentInfo } from '../../src/catalog-types.js'
import { keys } from '../../src/meta/keys.js'
import { backends, catalogPerTest, code, dump, file, flushed, rejectsCleanly, seedDocs } from './catalog-env.js'

async function all(catalog: Catalog): Promise<SegmentInfo[]> {
  const out: SegmentInfo[] = []
  for await (const s of catalog.listAllSegments()) out.push(s)
  return out
}

describe.each(backends)('Catalog GC support on $name', (backend) => {
  const env = catalogPerTest(backend)

  it('listAllSegments streams every record of every collection, dropped collections included', async () => {
    await seedDocs(env.catalog, 'a')
    await seedDocs(env.catalog, 'b')
    const a1 = await flushed(env.catalog, 'a', 'x')
    const b1 = await env.catalog.allocSegment({ collection: 'b' })
    const a2 = await flushed(env.catalog, 'a', 'y')
    await env.catalog.dropSegment(a2.id)
    await env.catalog.dropCollection('b')
    const segs = await all(env.catalog)
    expect(segs.map((s) => [s.id, s.state])).toEqual([[a1.id, 'flushed'], [b1.id, 'dropped'], [a2.id, 'dropped']])
  })

  it('forgetSegments removes dropped records only, all or nothing', async () => {
    const coll = await seedDocs(env.catalog)
    const live = await flushed(env.catalog, 'docs', 'live')
    const gone = await flushed(env.catalog, 'docs', 'gone')
    await env.catalog.dropSegment(gone.id)
    await rejectsCleanly(env.store.meta, () => env.catalog.forgetSegments([gone.id, live.id]), 'FAILED_PRECONDITION')
    await rejectsCleanly(env.store.meta, () => env.catalog.forgetSegments([0]), 'INVALID_ARGUMENT')
    await rejectsCleanly(env.store.meta, () => env.catalog.forgetSegments(gone.id as never), TypeError)
    expect(await env.catalog.forgetSegments([gone.id, 9999, gone.id])).toBe(1)
    await expect(env.catalog.getSegment(gone.id)).rejects.toEqual(code('NOT_FOUND'))
    expect(await env.store.meta.get(keys.collectionSegment(coll.id, gone.id))).toBeUndefined()
    expect((await env.catalog.listSegments('docs')).map((s) => s.id)).toEqual([live.id])
    expect(await env.catalog.forgetSegments([gone.id])).toBe(0)
  })

  it('forgets a dropped collection: record and index definitions; its segments separately', async () => {
    const coll = await seedDocs(env.catalog)
    const seg = await flushed(env.catalog, 'docs', 's')
    await seedDocs(env.catalog, 'keep')
    await env.catalog.dropCollection('docs')
    expect(await env.catalog.listDroppedCollections()).toEqual([{ id: coll.id, name: 'docs', droppedAt: env.clock.t }])
    expect(await env.catalog.listDroppedIndexes({ collectionId: coll.id })).toHaveLength(1)
    expect(await env.catalog.forgetDroppedCollection(coll.id)).toBe(true)
    expect(await env.catalog.listDroppedCollections()).toEqual([])
    expect(await env.catalog.listDroppedIndexes()).toEqual([])
    expect((await dump(env.store.meta)).filter(([k]) => k.startsWith(keys.indexPrefix(coll.id)))).toEqual([])
    expect(await env.catalog.listIndexes('keep')).toHaveLength(1)
    expect((await all(env.catalog)).map((s) => s.id)).toEqual([seg.id])
    expect(await env.catalog.forgetSegments([seg.id])).toBe(1)
    expect(await env.catalog.forgetDroppedCollection(coll.id)).toBe(false)
  })

  it('forgetIndex strips a dropped index’s builds from segments, refuses a live one', async () => {
    const coll = await seedDocs(env.catalog)
    const seg = await flushed(env.catalog, 'docs', 's')
    const build = await env.catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file('ix/HNSW')] })
    const text = await env.catalog.addTextIndex(seg.id, { fieldId: 102, files: [file('text/index')] })
    await rejectsCleanly(env.store.meta, () => env.catalog.forgetIndex(coll.id, build.indexId), 'FAILED_PRECONDITION')
    await env.catalog.dropIndex('docs', 'vec_idx')
    const [dropped] = await env.catalog.listDroppedIndexes()
    expect(dropped).toMatchObject({ id: build.indexId, collectionId: coll.id, droppedAt: env.clock.t })
    // The build stays on the segment until GC forgets the index.
    expect((await env.catalog.getSegment(seg.id)).indexes).toEqual([build])
    expect(await env.catalog.forgetIndex(coll.id, build.indexId)).toBe(true)
    expect(await env.catalog.getSegment(seg.id)).toMatchObject({ indexes: [], textIndexes: [text] })
    expect(await env.catalog.listDroppedIndexes()).toEqual([])
    expect(await env.catalog.forgetIndex(coll.id, build.indexId)).toBe(false)
  })

  it('forgetIndex works through a collection of any size in bounded steps', async () => {
    const coll = await seedDocs(env.catalog)
    const segs: SegmentInfo[] = []
    for (let i = 0; i < 90; i++) segs.push(await flushed(env.catalog, 'docs', `s${i}`))
    // Every third segment holds a build of the index; the others hold none.
    let indexId = 0
    for (const s of segs.filter((_, i) => i % 3 === 0)) indexId = (await env.catalog.addSegmentIndex(s.id, { indexName: 'vec_idx', files: [file(`ix/${s.id}`)] })).indexId
    await env.catalog.dropIndex('docs', 'vec_idx')
    expect(await env.catalog.forgetIndex(coll.id, indexId)).toBe(true)
    for (const s of await env.catalog.listSegments('docs')) expect(s.indexes).toEqual([])
    expect(await env.catalog.listDroppedIndexes()).toEqual([])
  })

  it('lists and forgets replaced builds', async () => {
    await seedDocs(env.catalog)
    const seg = await flushed(env.catalog, 'docs', 's')
    const b1 = await env.catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file('b1/HNSW')] })
    const j1 = await env.catalog.addJsonKeyIndex(seg.id, { fieldId: 103, files: [file('j1/keys')] })
    await env.catalog.addSegmentIndex(seg.id, { indexName: 'vec_idx', files: [file('b2/HNSW')] })
    await env.catalog.addJsonKeyIndex(seg.id, { fieldId: 103, files: [file('j2/keys')] })
    const builds = await env.catalog.listDroppedBuilds()
    expect(builds.map((b) => [b.buildId, b.kind, b.files])).toEqual([
      [b1.buildId, 'index', b1.files],
      [j1.buildId, 'jsonKeyIndex', j1.files],
    ])
    await env.catalog.forgetDroppedBuilds([b1.buildId])
    expect((await env.catalog.listDroppedBuilds()).map((b) => b.buildId)).toEqual([j1.buildId])
    await rejectsCleanly(env.store.meta, () => env.catalog.forgetDroppedBuilds([-1]), 'INVALID_ARGUMENT')
  })
})
