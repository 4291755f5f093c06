import { randomUUID } from 'node:crypto'
import { Etcd3 } from 'etcd3'
import { afterAll, describe, expect, it } from 'vitest'
import { EtcdMetaStore } from '../../src/etcd.js'
import { isMetaConflict, prefixRange, type MetaOperation, type MetaRange } from '../../src/meta/meta-store.js'
import { collect, metaStoreSuite, putAll } from '../conformance/meta-store.suite.js'
import { startEtcd } from '../helpers/etcd.js'

const server = await startEtcd()

if ('skip' in server) {
  console.warn(`EtcdMetaStore tests skipped: ${server.skip}`)
  describe.skip(`EtcdMetaStore (skipped: ${server.skip})`, () => {
    it('needs etcd', () => undefined)
  })
} else {
  const { endpoint } = server
  const admin = new Etcd3({ hosts: endpoint })
  afterAll(async () => {
    admin.close()
    await server.stop()
  })

  const freshPrefix = () => `test/${randomUUID()}/`
  const open = async (o: Partial<ConstructorParameters<typeof EtcdMetaStore>[0]> = {}) => {
    const store = new EtcdMetaStore({ hosts: endpoint, prefix: freshPrefix(), ...o })
    await store.open()
    return store
  }

  metaStoreSuite('EtcdMetaStore', async () => {
    const prefix = freshPrefix()
    return {
      store: new EtcdMetaStore({ hosts: endpoint, prefix }),
      reopen: async () => new EtcdMetaStore({ hosts: endpoint, prefix }),
      cleanup: async () => {
        await admin.delete().prefix(prefix)
      },
    }
  })

  describe('EtcdMetaStore', () => {
    const puts = (n: number, tag = 'k'): MetaOperation[] => Array.from({ length: n }, (_, i) => ({ type: 'put', key: `${tag}${i}`, value: String(i) }))

    it('reports shared conditional batches and maxTxnOps', async () => {
      const store = new EtcdMetaStore({ hosts: endpoint, maxTxnOps: 64 })
      expect(store.capabilities).toEqual({ sharedConditionalBatch: true, maxBatchOps: 64 })
      expect(store.prefix).toBe('vecsnap/')
    })

    it('rejects a batch above maxTxnOps with INVALID_ARGUMENT naming --max-txn-ops, writing nothing', async () => {
      const store = await open()
      try {
        // etcd checks the compares and the writes of a transaction each against --max-txn-ops.
        for (const [ops, expectations] of [[129, 0], [1, 129], [129, 129]]) {
          const err = await store
            .batch(puts(ops), { expect: Array.from({ length: expectations }, (_, i) => ({ key: `e${i}`, value: undefined })) })
            .then(() => undefined, (e: unknown) => e)
          expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('--max-txn-ops') })
        }
        expect(await collect(store.iterate())).toEqual([])
        await store.batch(puts(128), { expect: Array.from({ length: 128 }, (_, i) => ({ key: `e${i}`, value: undefined })) })
        expect(await collect(store.iterate())).toHaveLength(128)
      } finally {
        await store.close()
      }
    })

    it('maps etcd refusing a transaction above its --max-txn-ops to INVALID_ARGUMENT', async () => {
      const store = await open({ maxTxnOps: 1_000 })
      try {
        await expect(store.batch(puts(200))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('--max-txn-ops') })
        expect(await collect(store.iterate())).toEqual([])
      } finally {
        await store.close()
      }
    })

    it('stores keys under its prefix and sees no other keys', async () => {
      const a = await open()
      const b = await open()
      try {
        await a.batch([{ type: 'put', key: 'x', value: 'a' }])
        await b.batch([{ type: 'put', key: 'x', value: 'b' }])
        expect(await admin.get(`${a.prefix}x`).string()).toBe('a')
        expect(await collect(a.iterate())).toEqual([['x', 'a']])
        expect(await collect(b.iterate({ reverse: true }))).toEqual([['x', 'b']])
      } finally {
        await a.close()
        await b.close()
      }
    })

    it('loses no update when several stores (as several processes) increment one counter', async () => {
      const prefix = freshPrefix()
      const stores = await Promise.all(Array.from({ length: 4 }, async () => {
        const s = new EtcdMetaStore({ hosts: endpoint, prefix })
        await s.open()
        return s
      }))
      try {
        let conflicts = 0
        await Promise.all(stores.map(async (s) => {
          for (let done = 0; done < 10; ) {
            const raw = await s.get('counter')
            try {
              await s.batch([{ type: 'put', key: 'counter', value: String(Number(raw ?? 0) + 1) }], { expect: [{ key: 'counter', value: raw }] })
              done++
            } catch (err) {
              if (!isMetaConflict(err)) throw err
              conflicts++
            }
          }
        }))
        expect(await stores[0].get('counter')).toBe('40')
        expect(conflicts).toBeGreaterThan(0)
      } finally {
        await Promise.all(stores.map((s) => s.close()))
      }
    })

    it('names the keys whose expectations failed', async () => {
      const store = await open()
      try {
        await store.batch([{ type: 'put', key: 'a', value: '1' }])
        const err = await store
          .batch([{ type: 'put', key: 'b', value: '1' }], { expect: [{ key: 'a', value: '1' }, { key: 'b', value: '0' }] })
          .then(() => undefined, (e: unknown) => e)
        expect(isMetaConflict(err)).toBe(true)
        expect(err).toMatchObject({ details: { conflict: true, keys: ['b'] } })
      } finally {
        await store.close()
      }
    })

    it('pages with a small page size exactly as with one page', async () => {
      const small = await open({ pageSize: 3 })
      try {
        await putAll(small, Array.from({ length: 40 }, (_, i) => [`p/${String(i).padStart(3, '0')}`, String(i)]))
        const ranges: MetaRange[] = [
          prefixRange('p/'),
          { ...prefixRange('p/'), reverse: true },
          { gt: 'p/004', lte: 'p/031', limit: 10 },
          { gte: 'p/004', lt: 'p/031', reverse: true, limit: 7 },
          { gt: 'p/039' },
        ]
        const big = new EtcdMetaStore({ hosts: endpoint, prefix: small.prefix })
        await big.open()
        for (const range of ranges) expect(await collect(small.iterate(range))).toEqual(await collect(big.iterate(range)))
        await big.close()
      } finally {
        await small.close()
      }
    })

    it('rejects open with IO_ERROR when no etcd answers', async () => {
      const store = new EtcdMetaStore({ hosts: 'http://127.0.0.1:1', connectTimeoutMs: 2_000 })
      await expect(store.open()).rejects.toMatchObject({ code: 'IO_ERROR' })
      expect(store.status).toBe('closed')
      await expect(store.get('a')).rejects.toMatchObject({ code: 'NOT_OPEN' })
    })

    it('rejects wrong options with a TypeError', () => {
      expect(() => new EtcdMetaStore({} as never)).toThrow(TypeError)
      expect(() => new EtcdMetaStore({ hosts: endpoint, maxTxnOps: 0 })).toThrow(TypeError)
      expect(() => new EtcdMetaStore({ hosts: [] })).toThrow(TypeError)
    })
  })
}
