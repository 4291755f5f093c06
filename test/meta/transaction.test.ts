import { withoutBatchLimits } from '../helpers/batch-limits.js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { keys } from '../../src/meta/keys.js'
import type { MetaRange } from '../../src/meta/meta-store.js'
import { MetaTxn, Transactor } from '../../src/meta/transaction.js'
import type { AbortOptions } from '../../src/types.js'
import { DelegatingMetaStore } from '../helpers/delegating-meta-store.js'
import { backends, type TestStore } from './catalog-env.js'

/** Counts the point reads and scanned entries that reach `inner`. */
class CountingReads extends DelegatingMetaStore {
  gets = 0
  scanned = 0

  override get(key: string, o?: AbortOptions): Promise<string | undefined> {
    this.gets++
    return this.inner.get(key, o)
  }

  override async *iterate(range?: MetaRange, o?: AbortOptions): AsyncGenerator<[string, string]> {
    for await (const entry of this.inner.iterate(range, o)) {
      this.scanned++
      yield entry
    }
  }
}

const segmentKeys = (ids: number[]): string[] => ids.map((id) => keys.segment(id))

describe.each(backends)('MetaTxn.getMany on $name', ({ make }) => {
  let store: TestStore

  beforeEach(async () => {
    store = await make()
    // Segment records 1..100, as if two collections had interleaved them.
    await withoutBatchLimits(() => store.meta.batch(Array.from({ length: 100 }, (_, i) => ({ type: 'put' as const, key: keys.segment(i + 1), value: `seg-${i + 1}` }))))
  })
  afterEach(() => store.dispose())

  it('reads like get: own writes first, then earlier reads, and records every value read', async () => {
    const tx = new MetaTxn(store.meta)
    tx.put(keys.segment(3), 'mine')
    tx.del(keys.segment(5))
    expect(await tx.get(keys.segment(7))).toBe('seg-7')
    const wanted = [...segmentKeys([1, 3, 5, 7, 9, 1000]), 'c/unrelated']
    const values = await tx.getMany(wanted)
    expect(values).toEqual(['seg-1', 'mine', undefined, 'seg-7', 'seg-9', undefined, undefined])
    // Reads, not writes, become expectations: absent keys included, own writes excluded.
    const expected = new Map(tx.expectations().map((e) => [e.key, e.value]))
    expect(Object.fromEntries(expected)).toEqual({
      [keys.segment(1)]: 'seg-1',
      [keys.segment(7)]: 'seg-7',
      [keys.segment(9)]: 'seg-9',
      [keys.segment(1000)]: undefined,
      'c/unrelated': undefined,
    })
  })

  it('serves keys from one scan of a range that holds them, and records them as reads', async () => {
    const meta = new CountingReads(store.meta)
    const tx = new MetaTxn(meta)
    const ids = Array.from({ length: 50 }, (_, i) => 2 * i + 1) // 1, 3, …, 99
    const values = await tx.getMany(segmentKeys(ids), { scan: { gte: keys.segment(1), lte: keys.segment(99) } })
    expect(values).toEqual(ids.map((id) => `seg-${id}`))
    expect(meta.gets).toBe(0)
    expect(meta.scanned).toBeLessThanOrEqual(99)
    expect(tx.expectations()).toHaveLength(50)
    expect(tx.expectations()).toContainEqual({ key: keys.segment(99), value: 'seg-99' })
  })

  it('reads what the scan does not find with gets, whatever the range (absent keys, keys outside it, repeats)', async () => {
    const meta = new CountingReads(store.meta)
    const tx = new MetaTxn(meta)
    const wanted = segmentKeys([2, 4, 4, 150, 60, 2])
    const values = await tx.getMany(wanted, { scan: { gte: keys.segment(1), lte: keys.segment(10) } })
    expect(values).toEqual(['seg-2', 'seg-4', 'seg-4', undefined, 'seg-60', 'seg-2'])
    expect(meta.gets).toBe(2) // 150 (absent) and 60 (outside the range)
    expect(tx.expectations()).toContainEqual({ key: keys.segment(150), value: undefined })
  })

  it('stops a scan that reads far more entries than it looks for', async () => {
    await withoutBatchLimits(() => store.meta.batch(Array.from({ length: 3000 }, (_, i) => ({ type: 'put' as const, key: keys.segment(1000 + i), value: 'other' }))))
    const meta = new CountingReads(store.meta)
    const tx = new MetaTxn(meta)
    const values = await tx.getMany(segmentKeys([1, 5000]), { scan: { gte: keys.segment(1), lte: keys.segment(5000) } })
    expect(values).toEqual(['seg-1', undefined])
    expect(meta.scanned).toBeLessThan(1100)
    expect(meta.gets).toBe(1)
  })

  it('rejects a bad concurrency with a TypeError', async () => {
    const tx = new MetaTxn(store.meta)
    await expect(tx.getMany([keys.segment(1)], { concurrency: 0 })).rejects.toThrow('Expected `concurrency` to be ≥ 1, got `0`')
  })

  it('commits a transaction that read with getMany like one that read with get', async () => {
    const transactor = new Transactor(store.meta)
    const sum = await transactor.run(async (tx) => {
      const values = await tx.getMany(segmentKeys([1, 2, 3]), { scan: { gte: keys.segment(1), lte: keys.segment(3) } })
      tx.put('c/test-sum', values.join('+'))
      return values.length
    })
    expect(sum).toBe(3)
    expect(await store.meta.get('c/test-sum')).toBe('seg-1+seg-2+seg-3')
  })
})

