import { describe, expect, it } from 'vitest'
import { Catalog } from '../../src/meta/catalog.js'
import type { MetaBatchOptions, MetaOperation } from '../../src/meta/meta-store.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { Mutex } from '../../src/util/mutex.js'
import { DelegatingMetaStore } from '../helpers/delegating-meta-store.js'
import { seedDocs } from './catalog-env.js'

/** Issue 15, defect 8: every wait for a lock honours its signal, and catalog reads do not wait behind writes. */

describe('Mutex', () => {
  it('runs holders one at a time in FIFO order', async () => {
    const m = new Mutex()
    const order: number[] = []
    let release!: () => void
    const first = m.run(() => new Promise<void>((r) => (release = () => { order.push(1); r() })))
    const second = m.run(async () => void order.push(2))
    const third = m.run(async () => void order.push(3))
    await new Promise((r) => setImmediate(r))
    expect(order).toEqual([])
    release()
    await Promise.all([first, second, third])
    expect(order).toEqual([1, 2, 3])
  })

  it('a waiter whose signal fires leaves the queue with ABORTED; the others still run', async () => {
    const m = new Mutex()
    let release!: () => void
    const held = m.run(() => new Promise<void>((r) => (release = r)))
    const controller = new AbortController()
    let ran = false
    const aborted = m.run(async () => void (ran = true), { signal: controller.signal })
    const next = m.run(async () => 'next')
    controller.abort()
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' })
    release()
    await held
    expect(await next).toBe('next')
    expect(ran).toBe(false)
    await expect(m.run(async () => 1, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' })
  })

  it('a failing holder releases the lock', async () => {
    const m = new Mutex()
    await expect(m.run(async () => { throw new Error('boom') })).rejects.toThrow('boom')
    expect(await m.run(async () => 'after')).toBe('after')
  })
})

/** Holds every batch until released. */
class HeldBatches extends DelegatingMetaStore {
  hold: Promise<void> | undefined
  entered: (() => void) | undefined

  override async batch(ops: readonly MetaOperation[], o?: MetaBatchOptions): Promise<void> {
    if (this.hold !== undefined) {
      this.entered?.()
      await this.hold
    }
    return this.inner.batch(ops, o)
  }
}

describe('Catalog under a long write', () => {
  it('reads do not wait for the write; a write waiting for the lock can be aborted', async () => {
    const meta = new HeldBatches(new MemoryMetaStore())
    await meta.open()
    const catalog = Catalog.over(meta)
    await seedDocs(catalog)
    const seg = await catalog.allocSegment({ collection: 'docs' })
    let release!: () => void
    meta.hold = new Promise<void>((r) => (release = r))
    const inside = new Promise<void>((r) => (meta.entered = r))
    const slow = catalog.dropSegment(seg.id) // holds the transaction lock while its batch waits
    await inside
    // Reads answer at once, with the state before the write.
    expect((await catalog.getSegment(seg.id)).state).toBe('growing')
    expect((await catalog.listSegments('docs')).map((s) => s.id)).toEqual([seg.id])
    expect((await catalog.getCollection('docs')).name).toBe('docs')
    expect(await catalog.listIndexes('docs')).toHaveLength(1)
    // A write queued behind it gives up when its signal fires, writing nothing.
    const controller = new AbortController()
    const queued = catalog.allocSegment({ collection: 'docs', signal: controller.signal })
    controller.abort()
    await expect(queued).rejects.toMatchObject({ code: 'ABORTED' })
    meta.hold = undefined
    release()
    await slow
    expect((await catalog.listSegments('docs')).map((s) => s.state)).toEqual(['dropped'])
    await meta.close()
  })
})
