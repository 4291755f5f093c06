import { describe, expect, it, vi } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import { guardObjectStore } from '../../src/storage/guarded-object-store.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { readObjectStream, writeObjectStream } from '../../src/storage/streaming.js'
import { MemoryObjects } from '../helpers/memory-objects.js'

async function* chunks(...parts: (Uint8Array | string)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === 'string' ? new TextEncoder().encode(p) : p
}

async function readAll(stream: AsyncIterable<Uint8Array> | undefined): Promise<string | undefined> {
  if (stream === undefined) return undefined
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(Buffer.from(c))
  return Buffer.concat(parts).toString()
}

describe('readObjectStream / writeObjectStream over a store without streaming (fallback to get/put)', () => {
  it('round-trips a multi-chunk body through put and get', async () => {
    const store = new MemoryObjects()
    const put = vi.spyOn(store, 'put')
    const info = await writeObjectStream(store, 'a/b', chunks('hello ', '', 'streaming ', 'world'))
    expect(info).toMatchObject({ key: 'a/b', size: 21 })
    expect(put).toHaveBeenCalledTimes(1)
    expect(await readAll(await readObjectStream(store, 'a/b'))).toBe('hello streaming world')
    expect(await readObjectStream(store, 'absent')).toBeUndefined()
  })

  it('checks the declared size and writes nothing on a mismatch', async () => {
    const store = new MemoryObjects()
    await expect(writeObjectStream(store, 'k', chunks('abc'), { sizeBytes: 4 })).rejects.toMatchObject({ code: 'IO_ERROR', details: { sizeBytes: 4, actualBytes: 3 } })
    await expect(writeObjectStream(store, 'k', chunks('abcde'), { sizeBytes: 4 })).rejects.toMatchObject({ code: 'IO_ERROR' })
    expect(await store.head('k')).toBeUndefined()
    expect(await writeObjectStream(store, 'k', chunks('ab', 'cd'), { sizeBytes: 4 })).toMatchObject({ size: 4 })
  })

  it('writes nothing when the body fails, and keeps its SnapshotError', async () => {
    const store = new MemoryObjects()
    const failure = new SnapshotError('CORRUPT', 'source changed')
    async function* failing() {
      yield new Uint8Array(3)
      throw failure
    }
    await expect(writeObjectStream(store, 'k', failing())).rejects.toBe(failure)
    async function* plain() {
      yield new Uint8Array(3)
      throw new Error('socket reset')
    }
    await expect(writeObjectStream(store, 'k', plain())).rejects.toMatchObject({ code: 'IO_ERROR', cause: { message: 'socket reset' } })
    expect(await store.head('k')).toBeUndefined()
  })

  it('rejects ABORTED when the signal fires mid-body, writing nothing', async () => {
    const store = new MemoryObjects()
    const controller = new AbortController()
    async function* body() {
      yield new Uint8Array(3)
      controller.abort()
      yield new Uint8Array(3)
    }
    await expect(writeObjectStream(store, 'k', body(), { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' })
    expect(await store.head('k')).toBeUndefined()
  })

  it('rejects bad arguments before touching the store', async () => {
    const store = new MemoryObjects()
    const put = vi.spyOn(store, 'put')
    await expect(writeObjectStream(store, '../k', chunks('a'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(writeObjectStream(store, 'k', new Uint8Array(1) as unknown as AsyncIterable<Uint8Array>)).rejects.toThrow(TypeError)
    await expect(writeObjectStream(store, 'k', chunks('a'), { sizeBytes: -1 })).rejects.toThrow(TypeError)
    await expect(writeObjectStream(store, 'k', chunks('a'), { sizeBytes: 1.5 })).rejects.toThrow(TypeError)
    await expect(writeObjectStream(store, 'k', chunks('a'), { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' })
    async function* text() {
      yield 'text' as unknown as Uint8Array
    }
    await expect(writeObjectStream(store, 'k', text())).rejects.toThrow(TypeError)
    await expect(readObjectStream(store, 'a//b')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(readObjectStream(store, 'k', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' })
    expect(put).not.toHaveBeenCalled()
  })
})

describe('guardObjectStore streaming over an adapter with getStream/putStream', () => {
  function streamingStore() {
    const store = new MemoryObjects() as MemoryObjects & Required<Pick<ObjectStore, 'getStream' | 'putStream'>>
    const released = vi.fn()
    store.getStream = vi.fn(async (key: string) => {
      const bytes = await store.get(key)
      if (bytes === undefined) return undefined
      let i = 0
      const it: AsyncIterableIterator<Uint8Array> = {
        [Symbol.asyncIterator]: () => it,
        next: async () => (i < bytes.byteLength ? { done: false, value: bytes.subarray(i, (i += 2)) } : { done: true, value: undefined }),
        return: async () => {
          released()
          return { done: true, value: undefined }
        },
      }
      return it
    })
    store.putStream = vi.fn(async (key: string, body: AsyncIterable<Uint8Array>) => {
      const parts: Buffer[] = []
      for await (const c of body) parts.push(Buffer.from(c))
      return store.put(key, Buffer.concat(parts))
    })
    return { store, released }
  }

  it('uses the adapter methods, not get/put', async () => {
    const { store } = streamingStore()
    const get = vi.spyOn(store, 'get')
    await writeObjectStream(store, 'k', chunks('abcdef'))
    expect(store.putStream).toHaveBeenCalledTimes(1)
    expect(await readAll(await readObjectStream(store, 'k'))).toBe('abcdef')
    expect(store.getStream).toHaveBeenCalledTimes(1)
    expect(get).toHaveBeenCalledTimes(1) // only the fake's own read inside getStream
  })

  it('passes an early stop on to the adapter stream, even before the first chunk', async () => {
    const { store, released } = streamingStore()
    await store.put('k', new Uint8Array(10))
    const stream = await readObjectStream(store, 'k')
    for await (const _ of stream!) break
    expect(released).toHaveBeenCalledTimes(1)
    const unread = (await readObjectStream(store, 'k'))![Symbol.asyncIterator]()
    await unread.return!()
    expect(released).toHaveBeenCalledTimes(2)
  })

  it('maps failures while iterating to IO_ERROR, and a fired signal to ABORTED', async () => {
    const { store } = streamingStore()
    await store.put('k', new Uint8Array(10))
    store.getStream = async () =>
      (async function* () {
        yield new Uint8Array(2)
        throw new Error('connection reset')
      })()
    await expect(readAll(await readObjectStream(store, 'k'))).rejects.toMatchObject({ code: 'IO_ERROR', cause: { message: 'connection reset' } })
    const { store: other } = streamingStore()
    await other.put('k', new Uint8Array(10))
    const controller = new AbortController()
    const stream = await readObjectStream(other, 'k', { signal: controller.signal })
    const it = stream![Symbol.asyncIterator]()
    await it.next()
    controller.abort()
    await expect(it.next()).rejects.toMatchObject({ code: 'ABORTED' })
  })

  it('releases the body when the adapter fails without reading it', async () => {
    const { store } = streamingStore()
    store.putStream = vi.fn(async () => {
      throw new Error('backend down')
    })
    let released = false
    const body: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => ({ done: false, value: new Uint8Array(1) }),
        return: async () => {
          released = true
          return { done: true, value: undefined }
        },
      }),
    }
    await expect(writeObjectStream(store, 'k', body)).rejects.toMatchObject({ code: 'IO_ERROR' })
    expect(released).toBe(true)
  })

  it('checks keys before calling the adapter', async () => {
    const { store } = streamingStore()
    const guarded = guardObjectStore(store)
    await expect(guarded.getStream('/abs')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(guarded.putStream('a/../b', chunks('x'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(store.getStream).not.toHaveBeenCalled()
    expect(store.putStream).not.toHaveBeenCalled()
  })
})
