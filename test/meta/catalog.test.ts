import { describe, expect, it } from 'vitest'
import { Catalog } from '../../src/meta/catalog.js'
import type { CreateCollectionRequest, FieldSchema } from '../../src/catalog-types.js'
import { keys } from '../../src/meta/keys.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { Transactor } from '../../src/meta/transaction.js'
import { layout } from '../../src/storage/layout.js'
import {
  backends,
  catalogPerTest,
  code,
  CountingStore,
  docsRequest,
  dump,
  flushed,
  rejectsCleanly,
  seedDocs,
} from './catalog-env.js'

const fieldsWith = (f: Partial<FieldSchema>[]): FieldSchema[] => f as FieldSchema[]

describe.each(backends)('Catalog on $name', (backend) => {
  const env = catalogPerTest(backend)

  describe('createCollection', () => {
    it('creates a collection with field IDs from 100, allocator IDs, one channel per shard', async () => {
      const info = await env.catalog.createCollection(docsRequest('docs', { shardsNum: 3, partitionNames: ['_default', 'p1'], properties: { 'collection.ttl.seconds': '60' } }))
      expect(info).toEqual({
        id: 1,
        name: 'docs',
        schema: {
          description: 'test docs',
          fields: [
            { fieldId: 100, name: 'pk', dataType: 'Int64', isPrimaryKey: true, autoId: false },
            { fieldId: 101, name: 'vec', dataType: 'FloatVector', dim: 8 },
            { fieldId: 102, name: 'text', dataType: 'VarChar', maxLength: 64, params: { enable_match: 'true' } },
            { fieldId: 103, name: 'meta', dataType: 'JSON' },
          ],
        },
        shardsNum: 3,
        channels: [expect.any(String), expect.any(String), expect.any(String)],
        partitions: [{ id: 2, name: '_default' }, { id: 3, name: 'p1' }],
        properties: { 'collection.ttl.seconds': '60' },
        createdAt: env.clock.t,
        state: 'created',
      })
      expect(new Set(info.channels).size).toBe(3)
      expect(await env.catalog.getCollection('docs')).toEqual(info)
      expect(await env.catalog.listCollections()).toEqual([info])
      // The next collection's IDs continue from the allocator.
      const second = await env.catalog.createCollection(docsRequest('other'))
      expect(second.id).toBe(4)
      expect(second.partitions).toEqual([{ id: 5, name: '_default' }])
      expect(second.shardsNum).toBe(1)
      expect(second.properties).toEqual({})
    })

    it('adds _default to a partition list without it, and stores only known field properties', async () => {
      const info = await env.catalog.createCollection({
        name: 'c',
        partitionNames: ['a', 'b'],
        schema: { fields: [{ name: 'id', dataType: 'VarChar', maxLength: 16, isPrimaryKey: true, junk: 1 } as FieldSchema] },
      })
      expect(info.partitions.map((p) => p.name)).toEqual(['_default', 'a', 'b'])
      expect(info.schema).toEqual({ fields: [{ fieldId: 100, name: 'id', dataType: 'VarChar', maxLength: 16, isPrimaryKey: true }] })
    })

    it('keeps property keys as data, even `__proto__`', async () => {
      const properties = JSON.parse('{"__proto__": "x", "a": "b"}') as Record<string, string>
      await env.catalog.createCollection(docsRequest('docs', { properties }))
      const stored = (await env.catalog.getCollection('docs')).properties
      expect(Object.keys(stored)).toEqual(['__proto__', 'a'])
      expect(Object.getPrototypeOf(stored)).toBe(Object.prototype)
    })

    it('does not keep references to the request', async () => {
      const request = docsRequest()
      const info = await env.catalog.createCollection(request)
      request.schema.fields[0].name = 'changed'
      info.partitions.push({ id: 99, name: 'x' })
      expect((await env.catalog.getCollection('docs')).schema.fields[0].name).toBe('pk')
      expect((await env.catalog.getCollection('docs')).partitions).toHaveLength(1)
    })

    it.each(['', '1abc', 'a-b', 'a b', 'a/b', 'é', '..', 'x'.repeat(256), 'tab\t', 'nul\u0000'])('rejects the collection name %j (INVALID_ARGUMENT, nothing written)', async (name) => {
      await rejectsCleanly(env.store.meta, () => env.catalog.createCollection(docsRequest(name)), 'INVALID_ARGUMENT')
    })

    it.each(['a', '_', '_1', 'A_b_9', 'x'.repeat(255)])('accepts the name %j', async (name) => {
      await expect(env.catalog.createCollection(docsRequest(name))).resolves.toMatchObject({ name })
    })

    const bad: [string, (r: CreateCollectionRequest) => void][] = [
      ['shardsNum 0', (r) => (r.shardsNum = 0)],
      ['shardsNum 65', (r) => (r.shardsNum = 65)],
      ['shardsNum 1.5', (r) => (r.shardsNum = 1.5)],
      ['shardsNum NaN', (r) => (r.shardsNum = NaN)],
      ['no fields', (r) => (r.schema.fields = [])],
      ['duplicate field names', (r) => (r.schema.fields[1].name = 'pk')],
      ['a bad field name', (r) => (r.schema.fields[1].name = 'my-vec')],
      ['no primary key', (r) => (r.schema.fields[0].isPrimaryKey = false)],
      ['two primary keys', (r) => (r.schema.fields[2].isPrimaryKey = true)],
      ['a Float primary key', (r) => (r.schema.fields[0].dataType = 'Float')],
      ['autoId off the primary key', (r) => (r.schema.fields[1].autoId = true)],
      ['a vector without dim', (r) => delete r.schema.fields[1].dim],
      ['a vector with dim 0', (r) => (r.schema.fields[1].dim = 0)],
      ['a vector with dim 1.5', (r) => (r.schema.fields[1].dim = 1.5)],
      ['a binary vector with dim 12', (r) => Object.assign(r.schema.fields[1], { dataType: 'BinaryVector', dim: 12 })],
      ['a VarChar without maxLength', (r) => delete r.schema.fields[2].maxLength],
      ['an empty dataType', (r) => (r.schema.fields[3].dataType = '')],
      ['duplicate partitions', (r) => (r.partitionNames = ['p', 'p'])],
      ['a bad partition name', (r) => (r.partitionNames = ['p-1'])],
      ['an empty property key', (r) => (r.properties = { '': 'x' })],
    ]
    it.each(bad)('rejects %s (INVALID_ARGUMENT, nothing written)', async (_, mutate) => {
      const r = docsRequest()
      mutate(r)
      await rejectsCleanly(env.store.meta, () => env.catalog.createCollection(r), 'INVALID_ARGUMENT')
    })

    const misuse: [string, () => unknown][] = [
      ['a null request', () => null],
      ['a string request', () => 'docs'],
      ['a numeric name', () => ({ ...docsRequest(), name: 42 })],
      ['a missing schema', () => ({ name: 'docs' })],
      ['fields not an array', () => ({ name: 'docs', schema: { fields: {} } })],
      ['a field that is not an object', () => ({ name: 'docs', schema: { fields: ['pk'] } })],
      ['a numeric dataType', () => ({ name: 'docs', schema: { fields: fieldsWith([{ name: 'pk', dataType: 5 as never, isPrimaryKey: true }]) } })],
      ['a string isPrimaryKey', () => ({ name: 'docs', schema: { fields: fieldsWith([{ name: 'pk', dataType: 'Int64', isPrimaryKey: 'yes' as never }]) } })],
      ['a string dim', () => ({ name: 'docs', schema: { fields: fieldsWith([{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }, { name: 'v', dataType: 'FloatVector', dim: '8' as never }]) } })],
      ['a string shardsNum', () => ({ ...docsRequest(), shardsNum: '2' })],
      ['partitionNames not an array', () => ({ ...docsRequest(), partitionNames: '_default' })],
      ['a numeric property value', () => ({ ...docsRequest(), properties: { ttl: 60 } })],
      ['a numeric description', () => ({ name: 'docs', schema: { ...docsRequest().schema, description: 1 } })],
      ['a bad signal', () => ({ ...docsRequest(), signal: 'stop' })],
    ]
    it.each(misuse)('throws a TypeError for %s (nothing written)', async (_, make) => {
      await rejectsCleanly(env.store.meta, () => env.catalog.createCollection(make() as CreateCollectionRequest), TypeError)
    })

    it('words TypeErrors like p-queue', async () => {
      await expect(env.catalog.createCollection({ ...docsRequest(), name: 42 as never })).rejects.toThrow('Expected `name` to be a string, got `number`')
      await expect(env.catalog.getCollection(null as never)).rejects.toThrow('Expected `name` to be a string, got `null`')
      await expect(env.catalog.getSegment('7' as never)).rejects.toThrow('Expected `segmentId` to be a number, got `string`')
    })

    it('ALREADY_EXISTS for a taken name, also one being restored into', async () => {
      await env.catalog.createCollection(docsRequest())
      await rejectsCleanly(env.store.meta, () => env.catalog.createCollection(docsRequest()), 'ALREADY_EXISTS')
      await expect(env.catalog.createCollection(docsRequest())).rejects.toThrow('collection already exists')
      const transactor = new Transactor(env.store.meta)
      await transactor.run((tx) =>
        env.catalog.createCollectionTx(tx, { name: 'target', schema: { fields: [{ fieldId: 100, name: 'pk', dataType: 'Int64', isPrimaryKey: true }] }, shardsNum: 1, partitionNames: ['_default'], properties: {}, state: 'restoring' }),
      )
      await rejectsCleanly(env.store.meta, () => env.catalog.createCollection(docsRequest('target')), 'ALREADY_EXISTS')
    })
  })

  describe('createCollectionTx (restore)', () => {
    it('keeps field IDs and index IDs, creates the collection restoring: visible to get, hidden from list', async () => {
      await env.catalog.createCollection(docsRequest())
      const transactor = new Transactor(env.store.meta)
      const created = await transactor.run((tx) =>
        env.catalog.createCollectionTx(tx, {
          name: 'restored',
          schema: { fields: [{ fieldId: 100, name: 'pk', dataType: 'Int64', isPrimaryKey: true }, { fieldId: 105, name: 'v', dataType: 'FloatVector', dim: 4 }] },
          shardsNum: 2,
          partitionNames: ['_default', 'p1'],
          properties: { a: 'b' },
          indexes: [{ id: 777, fieldId: 105, name: 'v_idx', params: { index_type: 'FLAT' } }],
          state: 'restoring',
        }),
      )
      expect(created).toMatchObject({ name: 'restored', state: 'restoring', shardsNum: 2, partitions: [{ name: '_default' }, { name: 'p1' }] })
      expect(created.schema.fields.map((f) => f.fieldId)).toEqual([100, 105])
      expect(await env.catalog.getCollection('restored')).toEqual(created)
      expect((await env.catalog.listCollections()).map((c) => c.name)).toEqual(['docs'])
      expect(await env.catalog.listIndexes('restored')).toEqual([{ id: 777, fieldId: 105, name: 'v_idx', params: { index_type: 'FLAT' } }])
      // A restore owns it: no catalog mutation applies.
      await rejectsCleanly(env.store.meta, () => env.catalog.dropCollection('restored'), 'FAILED_PRECONDITION')
      await rejectsCleanly(env.store.meta, () => env.catalog.allocSegment({ collection: 'restored' }), 'FAILED_PRECONDITION')
      await rejectsCleanly(env.store.meta, () => env.catalog.createPartition('restored', 'p2'), 'FAILED_PRECONDITION')
      await rejectsCleanly(env.store.meta, () => env.catalog.dropIndex('restored', 'v_idx'), 'FAILED_PRECONDITION')
      await rejectsCleanly(env.store.meta, () => env.catalog.createIndex('restored', { fieldName: 'pk', indexName: 'pk_idx' }), 'FAILED_PRECONDITION')
      await rejectsCleanly(env.store.meta, () => env.catalog.compact({ collection: 'restored', sources: [1], result: { numRows: 0, binlogs: [] } }), 'FAILED_PRECONDITION')
    })
  })

  describe('getCollection / listCollections', () => {
    it('NOT_FOUND names the collection', async () => {
      await expect(env.catalog.getCollection('nope')).rejects.toEqual(code('NOT_FOUND'))
      await expect(env.catalog.getCollection('nope')).rejects.toThrow('collection not found: nope')
    })

    it('INVALID_ARGUMENT for a bad name', async () => {
      await expect(env.catalog.getCollection('a/b')).rejects.toEqual(code('INVALID_ARGUMENT'))
    })

    it('lists by ID', async () => {
      for (const n of ['zeta', 'alpha', 'mid']) await env.catalog.createCollection(docsRequest(n))
      expect((await env.catalog.listCollections()).map((c) => c.name)).toEqual(['zeta', 'alpha', 'mid'])
    })
  })

  describe('dropCollection', () => {
    it('removes the collection, drops its segments and indexes, records it for GC, in one batch', async () => {
      const counting = new CountingStore(env.store.meta)
      const cat = Catalog.over(counting, { now: env.clock.now })
      const coll = await seedDocs(cat)
      const a = await flushed(cat, 'docs', 'a')
      const b = await cat.allocSegment({ collection: 'docs' })
      await cat.dropSegment(a.id)
      const droppedA = await cat.getSegment(a.id)
      const before = counting.batches
      await cat.dropCollection('docs')
      const droppedAt = env.clock.t
      expect(counting.batches).toBe(before + 1)
      await expect(cat.getCollection('docs')).rejects.toEqual(code('NOT_FOUND'))
      expect(await cat.listCollections()).toEqual([])
      // Segments stay, dropped (an already dropped one keeps its droppedAt).
      expect(await cat.getSegment(a.id)).toEqual(droppedA)
      expect(await cat.getSegment(b.id)).toEqual({ ...b, state: 'dropped', droppedAt })
      const all = []
      for await (const s of cat.listAllSegments()) all.push(s.id)
      expect(all).toEqual([a.id, b.id])
      expect(await cat.listDroppedCollections()).toEqual([{ id: coll.id, name: 'docs', droppedAt }])
      expect(await cat.listDroppedIndexes()).toEqual([expect.objectContaining({ collectionId: coll.id, name: 'vec_idx', droppedAt })])
      expect(await env.store.meta.get(keys.collectionName('docs'))).toBeUndefined()
      // The name is free again, with new IDs.
      const again = await cat.createCollection(docsRequest())
      expect(again.id).toBeGreaterThan(b.id)
      expect(await cat.listSegments('docs')).toEqual([])
      expect(await cat.listIndexes('docs')).toEqual([])
    })

    it('NOT_FOUND for an unknown collection, nothing written', async () => {
      await rejectsCleanly(env.store.meta, () => env.catalog.dropCollection('nope'), 'NOT_FOUND')
    })
  })

  describe('partitions', () => {
    it('creates a partition with an allocator ID and lists it', async () => {
      await env.catalog.createCollection(docsRequest())
      const p = await env.catalog.createPartition('docs', 'p1')
      expect(p).toEqual({ id: 3, name: 'p1' })
      expect((await env.catalog.getCollection('docs')).partitions).toEqual([{ id: 2, name: '_default' }, p])
      const seg = await env.catalog.allocSegment({ collection: 'docs', partition: 'p1' })
      expect(seg.partitionId).toBe(p.id)
    })

    it('ALREADY_EXISTS / NOT_FOUND / INVALID_ARGUMENT, nothing written', async () => {
      await env.catalog.createCollection(docsRequest('docs', { partitionNames: ['p1'] }))
      await rejectsCleanly(env.store.meta, () => env.catalog.createPartition('docs', 'p1'), 'ALREADY_EXISTS')
      await rejectsCleanly(env.store.meta, () => env.catalog.createPartition('docs', '_default'), 'ALREADY_EXISTS')
      await rejectsCleanly(env.store.meta, () => env.catalog.createPartition('nope', 'p2'), 'NOT_FOUND')
      await rejectsCleanly(env.store.meta, () => env.catalog.createPartition('docs', 'p-2'), 'INVALID_ARGUMENT')
      await rejectsCleanly(env.store.meta, () => env.catalog.dropPartition('docs', 'p2'), 'NOT_FOUND')
      await rejectsCleanly(env.store.meta, () => env.catalog.dropPartition('docs', '_default'), 'INVALID_ARGUMENT')
      await rejectsCleanly(env.store.meta, () => env.catalog.dropPartition('docs', 'p 1'), 'INVALID_ARGUMENT')
      await rejectsCleanly(env.store.meta, () => env.catalog.createPartition('docs', 7 as never), TypeError)
      await rejectsCleanly(env.store.meta, () => env.catalog.createPartition(7 as never, 'p3'), TypeError)
    })

    it('dropping a partition drops its segments only', async () => {
      await env.catalog.createCollection(docsRequest('docs', { partitionNames: ['p1'] }))
      const inP1 = await flushed(env.catalog, 'docs', 'a', { partition: 'p1' })
      const growingP1 = await env.catalog.allocSegment({ collection: 'docs', partition: 'p1' })
      const inDefault = await flushed(env.catalog, 'docs', 'b')
      await env.catalog.dropPartition('docs', 'p1')
      const at = env.clock.t
      expect((await env.catalog.getCollection('docs')).partitions.map((p) => p.name)).toEqual(['_default'])
      expect(await env.catalog.getSegment(inP1.id)).toEqual({ ...inP1, state: 'dropped', droppedAt: at })
      expect(await env.catalog.getSegment(growingP1.id)).toEqual({ ...growingP1, state: 'dropped', droppedAt: at })
      expect(await env.catalog.getSegment(inDefault.id)).toEqual(inDefault)
      await rejectsCleanly(env.store.meta, () => env.catalog.allocSegment({ collection: 'docs', partition: 'p1' }), 'NOT_FOUND')
      // A new partition of the same name gets a new ID.
      const p1 = await env.catalog.createPartition('docs', 'p1')
      expect(p1.id).toBeGreaterThan(inDefault.id)
    })
  })

  describe('indexes', () => {
    it('creates, lists and drops index definitions', async () => {
      await env.catalog.createCollection(docsRequest())
      const vec = await env.catalog.createIndex('docs', { fieldName: 'vec', indexName: 'vec_idx', params: { index_type: 'HNSW', M: '16' } })
      expect(vec).toEqual({ id: 3, fieldId: 101, name: 'vec_idx', params: { index_type: 'HNSW', M: '16' } })
      const text = await env.catalog.createIndex('docs', { fieldName: 'text', indexName: 'text_idx' })
      expect(text).toEqual({ id: 4, fieldId: 102, name: 'text_idx', params: {} })
      expect(await env.catalog.listIndexes('docs')).toEqual([vec, text])
      await env.catalog.dropIndex('docs', 'vec_idx')
      expect(await env.catalog.listIndexes('docs')).toEqual([text])
      expect(await env.catalog.listDroppedIndexes()).toEqual([{ ...vec, collectionId: 1, createdAt: expect.any(Number), droppedAt: env.clock.t }])
      // The name (and the field) are free again; the new definition gets a new ID.
      const again = await env.catalog.createIndex('docs', { fieldName: 'vec', indexName: 'vec_idx', params: { index_type: 'IVF_FLAT' } })
      expect(again.id).toBe(5)
      expect(await env.catalog.listIndexes('docs')).toEqual([text, again])
    })

    it('rejects bad requests with the right code, nothing written', async () => {
      await seedDocs(env.catalog)
      await rejectsCleanly(env.store.meta, () => env.catalog.createIndex('docs', { fieldName: 'nope', indexName: 'x' }), 'INVALID_ARGUMENT')
      await rejectsCleanly(env.store.meta, () => env.catalog.createIndex('docs', { fieldName: 'text', indexName: 'vec_idx' }), 'ALREADY_EXISTS')
      await rejectsCleanly(env.store.meta, () => env.catalog.createIndex('docs', { fieldName: 'vec', indexName: 'vec_idx_2' }), 'ALREADY_EXISTS')
      await rejectsCleanly(env.store.meta, () => env.catalog.createIndex('docs', { fieldName: 'text', indexName: 'bad-name' }), 'INVALID_ARGUMENT')
      await rejectsCleanly(env.store.meta, () => env.catalog.createIndex('nope', { fieldName: 'text', indexName: 'x' }), 'NOT_FOUND')
      await rejectsCleanly(env.store.meta, () => env.catalog.createIndex('docs', { fieldName: 1 as never, indexName: 'x' }), TypeError)
      await rejectsCleanly(env.store.meta, () => env.catalog.createIndex('docs', { fieldName: 'text', indexName: 'x', params: { n: 1 as never } }), TypeError)
      await rejectsCleanly(env.store.meta, () => env.catalog.createIndex('docs', null as never), TypeError)
      await rejectsCleanly(env.store.meta, () => env.catalog.dropIndex('docs', 'nope'), 'NOT_FOUND')
      await env.catalog.dropIndex('docs', 'vec_idx')
      await rejectsCleanly(env.store.meta, () => env.catalog.dropIndex('docs', 'vec_idx'), 'NOT_FOUND')
      await rejectsCleanly(env.store.meta, () => env.catalog.listIndexes('nope'), 'NOT_FOUND')
    })
  })

  describe('lifecycle', () => {
    it('rejects NOT_OPEN when its manager is not open, and over a closed store', async () => {
      let open = false
      const gated = new Catalog({ transactor: new Transactor(env.store.meta), isOpen: () => open })
      await expect(gated.createCollection(docsRequest())).rejects.toEqual(code('NOT_OPEN'))
      await expect(gated.listCollections()).rejects.toEqual(code('NOT_OPEN'))
      await expect(gated.getSegment(1)).rejects.toEqual(code('NOT_OPEN'))
      open = true
      await expect(gated.createCollection(docsRequest())).resolves.toMatchObject({ name: 'docs' })
      const closed = new MemoryMetaStore()
      await expect(Catalog.over(closed).listCollections()).rejects.toEqual(code('NOT_OPEN'))
    })

    it('rejects ABORTED for a fired signal, nothing written', async () => {
      await env.catalog.createCollection(docsRequest())
      const signal = AbortSignal.abort(new Error('stop'))
      await rejectsCleanly(env.store.meta, () => env.catalog.createCollection({ ...docsRequest('other'), signal }), 'ABORTED')
      await rejectsCleanly(env.store.meta, () => env.catalog.allocSegment({ collection: 'docs', signal }), 'ABORTED')
      await rejectsCleanly(env.store.meta, () => env.catalog.dropCollection('docs', { signal }), 'ABORTED')
      await rejectsCleanly(env.store.meta, () => env.catalog.getCollection('docs', { signal }), 'ABORTED')
    })

    it('rejects bad constructor options with TypeError', () => {
      expect(() => new Catalog(undefined as never)).toThrow(TypeError)
      expect(() => new Catalog({ transactor: {} as never })).toThrow(TypeError)
      expect(() => new Catalog({ transactor: new Transactor(env.store.meta), now: 5 as never })).toThrow(TypeError)
      expect(() => Catalog.over(null as never)).toThrow(TypeError)
    })

    it('exposes the frozen layout', () => {
      expect(env.catalog.layout).toBe(layout)
      expect(Object.isFrozen(env.catalog.layout)).toBe(true)
      expect(env.catalog.layout.insertLog({ collectionId: 1, partitionId: 2, segmentId: 3, fieldId: 100, logId: 5 })).toBe('files/insert_log/1/2/3/100/5')
    })
  })

  describe('persistence', () => {
    it('survives close and reopen; the allocator continues without reusing IDs', async () => {
      const coll = await seedDocs(env.catalog, 'docs', { partitionNames: ['p1'] })
      const a = await flushed(env.catalog, 'docs', 'a')
      const b = await flushed(env.catalog, 'docs', 'b', { partition: 'p1' })
      const ix = await env.catalog.addSegmentIndex(a.id, { indexName: 'vec_idx', files: [{ key: 'files/idx/a/HNSW', size: 9 }] })
      const growing = await env.catalog.allocSegment({ collection: 'docs' })
      await env.catalog.dropSegment(b.id)
      const before = await dump(env.store.meta)
      const segsBefore = await env.catalog.listSegments('docs')
      const indexesBefore = await env.catalog.listIndexes('docs')
      const maxId = Math.max(coll.id, ...coll.partitions.map((p) => p.id), a.id, b.id, ix.buildId, growing.id)

      const reopened = Catalog.over(await env.store.reopen(), { now: env.clock.now })
      expect(await dump(env.store.meta)).toEqual(before)
      expect(await reopened.getCollection('docs')).toEqual(coll)
      expect(await reopened.listSegments('docs')).toEqual(segsBefore)
      expect(await reopened.listIndexes('docs')).toEqual(indexesBefore)
      // A reopened store starts a new block of IDs after every block reserved before.
      const next = await reopened.allocSegment({ collection: 'docs' })
      expect(next.id).toBeGreaterThan(maxId)
      const other = await reopened.createCollection(docsRequest('other'))
      expect(other.id).toBeGreaterThan(next.id)
    })
  })
})

describe('Catalog.allocIds', () => {
  it('reserves consecutive IDs no segment will reuse, and rejects bad counts writing nothing', async () => {
    const meta = new MemoryMetaStore()
    await meta.open()
    const catalog = Catalog.over(meta)
    await catalog.createCollection({ name: 'c', schema: { fields: [{ name: 'id', dataType: 'Int64', isPrimaryKey: true }, { name: 'v', dataType: 'FloatVector', dim: 2 }] } })
    const first = await catalog.allocIds(3)
    const seg = await catalog.allocSegment({ collection: 'c' })
    expect(seg.id).toBeGreaterThanOrEqual(first + 3)
    const next = await catalog.allocIds()
    expect(next).toBeGreaterThan(seg.id)
    await expect(catalog.allocIds(0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(catalog.allocIds(1.5)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(await catalog.allocIds()).toBe(next + 1)
    await meta.close()
  })
})
