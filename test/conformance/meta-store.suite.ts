import { setImmediate as tick } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { collect } from './collect.js'
import { isMetaConflict, prefixRange, type MetaOperation, type MetaRange, type MetaStore } from '../../src/meta/meta-store.js'

/** What a {@link metaStoreSuite} factory returns: a new, unopened store over empty storage. */
export interface MetaStoreFixture {
  store: MetaStore
  /** Returns a new store over the same storage (after `store` was closed); enables the persistence test. */
  reopen?: () => Promise<MetaStore>
  /** Removes what the fixture created. Stores are closed before it runs. */
  cleanup?: () => Promise<void>
}

type Entry = [string, string]

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

export { collect }

/** Writes entries in batches the store accepts. */
export async function putAll(store: MetaStore, entries: readonly Entry[]): Promise<void> {
  const size = Math.max(1, Math.min(100, store.capabilities.maxBatchOps))
  for (let i = 0; i < entries.length; i += size) {
    await store.batch(entries.slice(i, i + size).map(([key, value]) => ({ type: 'put', key, value })))
  }
}

/** What `iterate(range)` must yield over `entries`, computed from a sorted model. */
function model(entries: readonly Entry[], range: MetaRange): Entry[] {
  const inRange = ([k]: Entry) =>
    (range.gt === undefined || byteOrder(k, range.gt) > 0) &&
    (range.gte === undefined || byteOrder(k, range.gte) >= 0) &&
    (range.lt === undefined || byteOrder(k, range.lt) < 0) &&
    (range.lte === undefined || byteOrder(k, range.lte) <= 0)
  const out = [...entries].sort(([a], [b]) => byteOrder(a, b)).filter(inRange)
  if (range.reverse) out.reverse()
  return out.slice(0, range.limit ?? Infinity)
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = (i * 7919 + 13) % (i + 1)
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

const code = (c: string) => expect.objectContaining({ code: c })
const aborted = () => AbortSignal.abort(new Error('test abort'))
const pad = (n: number) => String(n).padStart(16, '0')

/**
 * Registers the MetaStore conformance tests (vitest `describe`/`it`) for one adapter.
 * Every adapter must pass it; see README, "Storage adapters".
 *
 * @param name The adapter's name in test titles.
 * @param factory Creates a fixture with a new, unopened store over empty storage.
 */
export function metaStoreSuite(name: string, factory: () => Promise<MetaStoreFixture>): void {
  describe(`MetaStore conformance: ${name}`, () => {
    let fx: MetaStoreFixture
    let store: MetaStore
    const extra: MetaStore[] = []

    beforeEach(async () => {
      fx = await factory()
      store = fx.store
      await store.open()
    })

    afterEach(async () => {
      for (const s of [store, ...extra.splice(0)]) await s.close().catch(() => undefined)
      await fx.cleanup?.()
    })

    describe('get and batch', () => {
      it('resolves undefined for an absent key', async () => {
        expect(await store.get('absent')).toBeUndefined()
        expect(await store.get('a/b/c')).toBeUndefined()
      })

      it('reads back puts, overwrites and deletes', async () => {
        await store.batch([{ type: 'put', key: 'a', value: '1' }, { type: 'put', key: 'b', value: '' }])
        expect(await store.get('a')).toBe('1')
        expect(await store.get('b')).toBe('')
        await store.batch([{ type: 'put', key: 'a', value: '2' }, { type: 'del', key: 'b' }, { type: 'del', key: 'never' }])
        expect(await store.get('a')).toBe('2')
        expect(await store.get('b')).toBeUndefined()
        await store.batch([])
        expect(await collect(store.iterate())).toEqual([['a', '2']])
      })

      it('applies a batch in order: a later operation on the same key wins', async () => {
        await putAll(store, [['x', 'old'], ['z', 'old']])
        await store.batch([
          { type: 'put', key: 'a', value: '1' },
          { type: 'put', key: 'b', value: '1' },
          { type: 'del', key: 'a' },
          { type: 'put', key: 'c', value: '1' },
          { type: 'put', key: 'b', value: '2' },
          { type: 'del', key: 'x' },
          { type: 'put', key: 'x', value: 'new' },
          { type: 'put', key: 'y', value: '1' },
          { type: 'del', key: 'y' },
          { type: 'del', key: 'z' },
        ])
        expect(await collect(store.iterate())).toEqual([['b', '2'], ['c', '1'], ['x', 'new']])
      })

      it('stores unicode keys and values, empty, multi-line and large values exactly', async () => {
        const entries: Entry[] = [
          ['unicode/é', 'héllo wörld ✓ — 日本語 😀 \u0000 after NUL'],
          ['unicode/😀', 'emoji key'],
          ['unicode/multi', 'line 1\nline 2\r\n\ttab'],
          ['unicode/empty', ''],
          ['unicode/json', JSON.stringify({ a: [1, 'ü', null], b: '\u2028' })],
          ['unicode/large', 'ß'.repeat(50_000)],
        ]
        await putAll(store, entries)
        for (const [k, v] of entries) expect(await store.get(k)).toBe(v)
        expect(await collect(store.iterate(prefixRange('unicode/')))).toEqual(model(entries, {}))
      })

      it('writes nothing when a batch holds an invalid operation', async () => {
        await putAll(store, [['a', 'old']])
        const bad: unknown[] = [
          { type: 'put', key: 'c', value: undefined },
          { type: 'put', key: 'c', value: null },
          { type: 'merge', key: 'c', value: '1' },
          { type: 'put', key: '', value: '1' },
          { type: 'del', key: undefined },
          null,
        ]
        for (const op of bad) {
          const ops = [{ type: 'put', key: 'a', value: 'new' }, { type: 'put', key: 'b', value: '1' }, op] as MetaOperation[]
          await expect(store.batch(ops), JSON.stringify(op)).rejects.toThrow()
          expect(await store.get('a')).toBe('old')
          expect(await store.get('b')).toBeUndefined()
          expect(await store.get('c')).toBeUndefined()
        }
      })

      it('applies a batch aborted while in flight entirely or not at all', async () => {
        for (const delay of [0, 1, 2]) {
          const ac = new AbortController()
          const ops: MetaOperation[] = Array.from({ length: Math.min(100, store.capabilities.maxBatchOps) }, (_, i) => ({
            type: 'put',
            key: `abort${delay}/${pad(i)}`,
            value: String(i),
          }))
          const pending = store.batch(ops, { signal: ac.signal }).then(() => undefined, (err: unknown) => err)
          for (let i = 0; i < delay; i++) await tick()
          ac.abort()
          const err = await pending
          const written = await collect(store.iterate(prefixRange(`abort${delay}/`)))
          if (err === undefined) expect(written).toHaveLength(ops.length)
          else {
            expect(err).toEqual(code('ABORTED'))
            expect(written).toEqual([])
          }
        }
      })
    })

    describe('iterate', () => {
      const keys = shuffled(Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, '0')}`))
      const entries: Entry[] = keys.map((k) => [k, `v-${k}`])
      const ranges: MetaRange[] = [
        {},
        { gt: 'k05' },
        { gte: 'k05' },
        { lt: 'k05' },
        { lte: 'k05' },
        { gt: 'k03', lt: 'k08' },
        { gte: 'k03', lte: 'k08' },
        { gt: 'k03x', lte: 'k08x' },
        { gte: 'k' },
        { lt: 'k' },
        { gt: 'k19' },
        { gte: 'k10', lt: 'k10' },
        { gt: 'k12', lt: 'k05' },
        { limit: 0 },
        { limit: 3 },
        { limit: 100 },
        { gte: 'k05', limit: 3 },
        { reverse: true },
        { reverse: true, limit: 3 },
        { reverse: true, gt: 'k05', lte: 'k10', limit: 2 },
        { reverse: true, gte: 'k05', lt: 'k10' },
        { reverse: true, lt: 'k00' },
      ]

      beforeEach(async () => {
        await putAll(store, [...entries, ['j', 'before'], ['l', 'after']])
      })

      for (const range of ranges) {
        it(`honours ${JSON.stringify(range)}`, async () => {
          const all: Entry[] = [...entries, ['j', 'before'], ['l', 'after']]
          const expected = model(all, range)
          expect(await collect(store.iterate(range))).toEqual(expected)
        })
      }

      it('orders zero-padded numeric keys numerically', async () => {
        const ids = [1, 2, 9, 10, 11, 99, 100, 101, 1000, 123_456, 9_007_199_254_740_991]
        await putAll(store, shuffled(ids).map((id) => [`n/${pad(id)}`, String(id)]))
        const values = (await collect(store.iterate(prefixRange('n/')))).map(([, v]) => Number(v))
        expect(values).toEqual(ids)
        const rev = await collect(store.iterate({ ...prefixRange('n/'), reverse: true, limit: 3 }))
        expect(rev.map(([, v]) => Number(v))).toEqual([9_007_199_254_740_991, 123_456, 1000])
        const from = await collect(store.iterate({ gt: `n/${pad(11)}`, lt: `n/${pad(1000)}` }))
        expect(from.map(([, v]) => Number(v))).toEqual([99, 100, 101])
      })

      it('covers exactly one prefix with prefixRange', async () => {
        const extra: Entry[] = [['p', '0'], ['p/', '1'], ['p/1', '2'], ['p/2/x', '3'], ['p/é', '4'], ['p/😀', '9'], ['p/\uffff', '10'], ['p0', '5'], ['p.', '6'], ['q/1', '7'], ['o/1', '8']]
        await putAll(store, extra)
        const got = await collect(store.iterate(prefixRange('p/')))
        expect(got).toEqual(model(extra, {}).filter(([k]) => k.startsWith('p/')))
        const rev = await collect(store.iterate({ ...prefixRange('p/'), reverse: true }))
        expect(rev).toEqual([...got].reverse())
      })

      it('orders keys by UTF-8 bytes', async () => {
        const odd: Entry[] = ['u/B', 'u/a', 'u/é', 'u/ｚ', 'u/😀', 'u/~', 'u/a/b', 'u/aa'].map((k) => [k, k])
        await putAll(store, odd)
        expect((await collect(store.iterate({ gte: 'u/', lt: 'u0' }))).map(([k]) => k)).toEqual(
          ['u/B', 'u/a', 'u/a/b', 'u/aa', 'u/~', 'u/é', 'u/ｚ', 'u/😀'],
        )
      })

      it('pages through many entries in both directions', async () => {
        const many: Entry[] = Array.from({ length: 2_345 }, (_, i) => [`m/${pad(i)}`, `${i}`])
        await putAll(store, many)
        expect(await collect(store.iterate(prefixRange('m/')))).toEqual(many)
        expect(await collect(store.iterate({ ...prefixRange('m/'), reverse: true }))).toEqual([...many].reverse())
        expect(await collect(store.iterate({ ...prefixRange('m/'), limit: 1_500 }))).toEqual(many.slice(0, 1_500))
        expect(await collect(store.iterate({ gt: `m/${pad(100)}`, lte: `m/${pad(2_200)}`, reverse: true, limit: 1_111 }))).toEqual(
          many.slice(1_090, 2_201).reverse(),
        )
      })

      it('can stop early, then keep working', async () => {
        for await (const [k] of store.iterate()) if (k === 'k02') break
        await store.batch([{ type: 'put', key: 'k02', value: 'x' }])
        expect(await store.get('k02')).toBe('x')
      })

      it('rejects with ABORTED when the signal fires between entries', async () => {
        const ac = new AbortController()
        const seen: string[] = []
        const run = async () => {
          for await (const [k] of store.iterate({}, { signal: ac.signal })) {
            seen.push(k)
            if (seen.length === 3) ac.abort()
          }
        }
        await expect(run()).rejects.toEqual(code('ABORTED'))
        expect(seen).toHaveLength(3)
      })
    })

    describe('conditional batch', () => {
      beforeEach(async () => {
        await putAll(store, [['a', '1'], ['b', '2']])
      })

      it('applies when every expectation holds', async () => {
        await store.batch([{ type: 'put', key: 'a', value: '10' }, { type: 'put', key: 'c', value: '3' }], {
          expect: [{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: undefined }],
        })
        expect(await collect(store.iterate())).toEqual([['a', '10'], ['b', '2'], ['c', '3']])
        await store.batch([{ type: 'del', key: 'b' }], { expect: [{ key: 'b', value: '2' }] })
        expect(await store.get('b')).toBeUndefined()
      })

      const failing: [string, { key: string; value: string | undefined }[]][] = [
        ['a value differs', [{ key: 'a', value: '0' }]],
        ['an expected-absent key is present', [{ key: 'b', value: undefined }]],
        ['an expected key is absent', [{ key: 'zz', value: 'x' }]],
        ['an expected key is empty but absent', [{ key: 'zz', value: '' }]],
        ['one of several fails', [{ key: 'a', value: '1' }, { key: 'zz', value: undefined }, { key: 'b', value: '3' }]],
      ]
      for (const [why, expectations] of failing) {
        it(`rejects with a conflict and writes nothing when ${why}`, async () => {
          const err = await store
            .batch([{ type: 'put', key: 'a', value: 'changed' }, { type: 'del', key: 'b' }, { type: 'put', key: 'zz', value: 'new' }], {
              expect: expectations,
            })
            .then(() => undefined, (e: unknown) => e)
          expect(err).toEqual(code('FAILED_PRECONDITION'))
          expect(isMetaConflict(err)).toBe(true)
          expect(await collect(store.iterate())).toEqual([['a', '1'], ['b', '2']])
        })
      }

      it('loses no update under concurrent read-increment-write loops', async () => {
        const workers = 6
        const perWorker = 8
        let conflicts = 0
        const worker = async () => {
          for (let done = 0; done < perWorker; ) {
            const raw = await store.get('counter')
            await tick()
            const next = String(Number(raw ?? '0') + 1)
            try {
              await store.batch([{ type: 'put', key: 'counter', value: next }], { expect: [{ key: 'counter', value: raw }] })
              done++
            } catch (err) {
              if (!isMetaConflict(err)) throw err
              conflicts++
            }
          }
        }
        await Promise.all(Array.from({ length: workers }, worker))
        expect(await store.get('counter')).toBe(String(workers * perWorker))
        expect(conflicts).toBeGreaterThan(0)
      })
    })

    describe('lifecycle', () => {
      it('rejects NOT_OPEN before open and after close', async () => {
        const fresh = await factory()
        try {
          expect(fresh.store.status).toBe('closed')
          await expect(fresh.store.get('a')).rejects.toEqual(code('NOT_OPEN'))
          await expect(fresh.store.batch([{ type: 'put', key: 'a', value: '1' }])).rejects.toEqual(code('NOT_OPEN'))
          await expect(collect(fresh.store.iterate())).rejects.toEqual(code('NOT_OPEN'))
        } finally {
          await fresh.store.close()
          await fresh.cleanup?.()
        }
        await store.close()
        expect(store.status).toBe('closed')
        await expect(store.get('a')).rejects.toEqual(code('NOT_OPEN'))
        await expect(store.batch([{ type: 'put', key: 'a', value: '1' }])).rejects.toEqual(code('NOT_OPEN'))
        await expect(collect(store.iterate())).rejects.toEqual(code('NOT_OPEN'))
      })

      it('opens and closes idempotently', async () => {
        await Promise.all([store.open(), store.open()])
        await store.open()
        expect(store.status).toBe('open')
        await store.batch([{ type: 'put', key: 'a', value: '1' }])
        await Promise.all([store.close(), store.close()])
        await store.close()
        expect(store.status).toBe('closed')
      })

      it('rejects with ABORTED when the signal already fired', async () => {
        await putAll(store, [['a', '1']])
        await expect(store.get('a', { signal: aborted() })).rejects.toEqual(code('ABORTED'))
        await expect(store.batch([{ type: 'put', key: 'b', value: '1' }], { signal: aborted() })).rejects.toEqual(code('ABORTED'))
        await expect(collect(store.iterate({}, { signal: aborted() }))).rejects.toEqual(code('ABORTED'))
        expect(await store.get('b')).toBeUndefined()
      })

      it('keeps data across close and reopen', async (ctx) => {
        if (fx.reopen === undefined) return ctx.skip()
        const entries: Entry[] = [['r/1', 'one'], ['r/2', 'twö'], ['r/3', '']]
        await putAll(store, entries)
        await store.batch([{ type: 'del', key: 'r/3' }])
        await store.close()
        const again = await fx.reopen()
        extra.push(again)
        await again.open()
        expect(await collect(again.iterate())).toEqual(entries.slice(0, 2))
      })
    })
  })
}
