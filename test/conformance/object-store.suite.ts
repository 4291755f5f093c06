import { randomBytes } from 'node:crypto'
import { setImmediate as tick } from 'node:timers/promises'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { collect } from './collect.js'
import { SnapshotError } from '../../src/errors.js'
import type { ObjectInfo, ObjectStore } from '../../src/storage/object-store.js'
import { readObjectStream, writeObjectStream } from '../../src/storage/streaming.js'

/** What an {@link objectStoreSuite} factory returns: a store over empty storage. */
export interface ObjectStoreFixture {
  store: ObjectStore
  /** Removes what the fixture created; runs after the store is closed. May throw to fail the test. */
  cleanup?: () => Promise<void>
  /**
   * Checks to skip, only for test servers with known bugs (never for a real backend):
   * - `listOrderAcrossDirectories`: the server lists a "directory" before a sibling key
   *   that sorts before '/' (s3rver lists `a/x` before `a-b`).
   * - `abortInFlight`: the server keeps the part of an upload received before the client
   *   aborted (s3rver); real S3 discards an incomplete body.
   * - `racingPuts`: the server writes an object in place (s3rver truncates and streams into
   *   the object's file), so concurrent puts of one key can interleave; real S3 keeps one
   *   whole body.
   */
  skip?: readonly ObjectStoreCheck[]
}

/** Checks of {@link objectStoreSuite} a fixture may skip; see {@link ObjectStoreFixture.skip}. */
export type ObjectStoreCheck = 'listOrderAcrossDirectories' | 'abortInFlight' | 'racingPuts'

export { collect }

/** The keys `store.list(prefix)` yields, in order. */
export async function listKeys(store: ObjectStore, prefix = ''): Promise<string[]> {
  return (await collect(store.list(prefix))).map((o) => o.key)
}

const enc = new TextEncoder()
const bytes = (s: string) => enc.encode(s)
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))
const sorted = (keys: readonly string[]) => [...keys].sort(byteOrder)
const code = (c: string) => expect.objectContaining({ code: c })
/** Turns a synchronous throw into a rejection, so an adapter may do either. */
const settle = <T>(fn: () => T) => Promise.resolve().then(fn)
/** Clocks of remote stores may be off by this much. */
const CLOCK_SLACK_MS = 10 * 60_000

function expectBytes(got: Uint8Array | undefined, want: Uint8Array, label = ''): void {
  expect(got, `${label} is a Uint8Array`).toBeInstanceOf(Uint8Array)
  expect(got!.byteLength, `${label} length`).toBe(want.byteLength)
  expect(Buffer.from(got!.buffer, got!.byteOffset, got!.byteLength).equals(Buffer.from(want)), `${label} content`).toBe(true)
}

function expectRecent(info: ObjectInfo, before: number): void {
  expect(Number.isFinite(info.lastModified), 'lastModified is a number').toBe(true)
  expect(info.lastModified).toBeGreaterThan(before - CLOCK_SLACK_MS)
  expect(info.lastModified).toBeLessThan(Date.now() + CLOCK_SLACK_MS)
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = (i * 7919 + 13) % (i + 1)
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

async function putAll(store: ObjectStore, keys: readonly string[], body = (k: string) => bytes(`v:${k}`)): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]
      await store.put(key, body(key))
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
}

/** `body` as an async iterable of chunks of the given sizes (the rest in one last chunk). */
async function* chunked(body: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let at = 0
  for (const size of sizes) {
    if (at >= body.byteLength) break
    yield body.slice(at, at + size)
    at += size
    await tick()
  }
  if (at < body.byteLength) yield body.slice(at)
}

/** Every chunk of a stream, joined; `undefined` for none. */
async function readAll(stream: AsyncIterable<Uint8Array> | undefined): Promise<Uint8Array | undefined> {
  if (stream === undefined) return undefined
  const parts: Uint8Array[] = []
  for await (const chunk of stream) {
    expect(chunk, 'a chunk').toBeInstanceOf(Uint8Array)
    parts.push(chunk)
  }
  return new Uint8Array(Buffer.concat(parts))
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

const BAD_KEYS: unknown[] = ['', '/abs', '/', 'a\\b', 'a\0b', 'a//b', './a', 'a/./b', '../a', 'a/../b', 'a/..', '..', '.', 'a/', 123, null, undefined, {}]
const BAD_PREFIXES: unknown[] = ['/a', '/', 'a//', '../', 'a/../b', '..', 'a/./', 'a\\b', 'a\0', 7, null]

/**
 * Registers the ObjectStore conformance tests (vitest `describe`/`it`) for one adapter:
 * absence, round trips, overwrite, head, ordered and paged listing, copy, idempotent
 * delete, key validation and abort signals; and, for a store with `getStream` and
 * `putStream`, streaming (multi-chunk round trips, absence, atomic replace, aborts and
 * failing bodies leaving nothing, length checks, early stops). Every adapter must pass it;
 * see README, "Storage adapters".
 *
 * @param name The adapter's name in test titles.
 * @param factory Creates a fixture with a new store over empty storage.
 *
 * @example
 * objectStoreSuite('MyObjectStore', async () => ({ store: new MyObjectStore() }))
 */
export function objectStoreSuite(name: string, factory: () => Promise<ObjectStoreFixture>): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let fx: ObjectStoreFixture
    let store: ObjectStore

    beforeEach(async () => {
      fx = await factory()
      store = fx.store
    })

    afterEach(async () => {
      await store?.close?.()
      await fx?.cleanup?.()
    })

    it('declares boolean capabilities', () => {
      for (const cap of ['serverSideCopy', 'hardLink', 'multipartCopy'] as const) expect(typeof store.capabilities[cap]).toBe('boolean')
    })

    describe('get, head and put', () => {
      it('resolves undefined for absent keys, including "directories" of other keys', async () => {
        expect(await store.get('absent')).toBeUndefined()
        expect(await store.head('absent')).toBeUndefined()
        expect(await store.get('a/b/c')).toBeUndefined()
        await store.put('dir/sub/x', bytes('x'))
        for (const key of ['dir', 'dir/sub', 'dir/su', 'dir/sub/x/y']) {
          expect(await store.get(key), key).toBeUndefined()
          expect(await store.head(key), key).toBeUndefined()
        }
      })

      it('round-trips binary, empty and 1 MiB objects exactly', async () => {
        const all = Uint8Array.from({ length: 256 }, (_, i) => i)
        const large = new Uint8Array(randomBytes(1024 * 1024))
        const before = Date.now()
        for (const [key, body] of [['bin/all-bytes', all], ['bin/empty', new Uint8Array(0)], ['bin/large', large]] as const) {
          const info = await store.put(key, body)
          expect(info).toMatchObject({ key, size: body.byteLength })
          expectRecent(info, before)
          expectBytes(await store.get(key), body, key)
        }
      })

      it('stores a copy of the body, and hands out copies', async () => {
        const body = bytes('original')
        await store.put('owned', body)
        body.fill(0)
        const got = await store.get('owned')
        expectBytes(got, bytes('original'))
        got!.fill(0)
        expectBytes(await store.get('owned'), bytes('original'))
      })

      it('overwrites an object with the whole new one', async () => {
        await store.put('over', bytes('first, longer body'))
        const info = await store.put('over', bytes('second'))
        expect(info).toMatchObject({ key: 'over', size: 6 })
        expectBytes(await store.get('over'), bytes('second'))
        expect(await store.head('over')).toMatchObject({ key: 'over', size: 6 })
        expect(await listKeys(store)).toEqual(['over'])
      })

      it('stores a fresh put, and a fresh put over an existing key replaces it whole', async () => {
        const info = await store.put('fresh/new', bytes('first, longer body'), { fresh: true })
        expect(info).toMatchObject({ key: 'fresh/new', size: 18 })
        expectBytes(await store.get('fresh/new'), bytes('first, longer body'))
        await store.put('fresh/new', bytes('second'), { fresh: true })
        expectBytes(await store.get('fresh/new'), bytes('second'))
        expect(await store.head('fresh/new')).toMatchObject({ key: 'fresh/new', size: 6 })
      })

      it('keeps one whole body when puts of one key race', async (ctx) => {
        if (fx.skip?.includes('racingPuts')) ctx.skip()
        const bodies = Array.from({ length: 8 }, (_, i) => new Uint8Array(64 * 1024).fill(i + 1))
        await Promise.all(bodies.map((b) => store.put('race', b)))
        const got = await store.get('race')
        expect(got?.byteLength).toBe(64 * 1024)
        expect(bodies.some((b) => Buffer.from(got!).equals(Buffer.from(b)))).toBe(true)
      })

      it('heads size and lastModified', async () => {
        const before = Date.now()
        await store.put('h/one', bytes('12345'))
        const info = await store.head('h/one')
        expect(info).toMatchObject({ key: 'h/one', size: 5 })
        expectRecent(info!, before)
        expect(await store.head('h/empty')).toBeUndefined()
        await store.put('h/empty', new Uint8Array(0))
        expect(await store.head('h/empty')).toMatchObject({ key: 'h/empty', size: 0 })
      })

      it('stores keys with spaces and non-ASCII characters', async () => {
        const key = 'dir with space/ü é/日本 😀.bin'
        await store.put(key, bytes('unicode'))
        expectBytes(await store.get(key), bytes('unicode'))
        expect(await store.head(key)).toMatchObject({ key, size: 7 })
        expect(await listKeys(store, 'dir with space/')).toEqual([key])
      })
    })

    describe('list', () => {
      const keys = ['a/b/1', 'a/b/2', 'a/b/sub/z', 'a/bc/1', 'a/bd', 'a/c', 'aa', 'b/x', 'z', 'ü/1']

      it('yields every object under a prefix, ordered by key, with sizes', async () => {
        await putAll(store, shuffled(keys))
        const all = await collect(store.list(''))
        expect(all.map((o) => o.key)).toEqual(sorted(keys))
        for (const o of all) expect(o).toMatchObject({ size: bytes(`v:${o.key}`).byteLength, lastModified: expect.any(Number) })
        const cases: [string, string[]][] = [
          ['a/b', ['a/b/1', 'a/b/2', 'a/b/sub/z', 'a/bc/1', 'a/bd']],
          ['a/b/', ['a/b/1', 'a/b/2', 'a/b/sub/z']],
          ['a/bc', ['a/bc/1']],
          ['a/', ['a/b/1', 'a/b/2', 'a/b/sub/z', 'a/bc/1', 'a/bd', 'a/c']],
          ['a', ['a/b/1', 'a/b/2', 'a/b/sub/z', 'a/bc/1', 'a/bd', 'a/c', 'aa']],
          ['a/b/1', ['a/b/1']],
          ['ü', ['ü/1']],
          ['nothing/', []],
          ['a/b/sub/z/', []],
          ['zz', []],
        ]
        for (const [prefix, want] of cases) expect(await listKeys(store, prefix), `list(${JSON.stringify(prefix)})`).toEqual(want)
      })

      it('orders keys by their UTF-8 bytes, across "directories"', async (ctx) => {
        if (fx.skip?.includes('listOrderAcrossDirectories')) ctx.skip()
        const mixed = ['m/a-b', 'm/a.b', 'm/a/1', 'm/a0', 'm/\uff5e', 'm/😀']
        await putAll(store, shuffled(mixed))
        expect(await listKeys(store, 'm/')).toEqual(['m/a-b', 'm/a.b', 'm/a/1', 'm/a0', 'm/\uff5e', 'm/😀'])
      })

      // 1100 puts: slow on remote buckets and test servers.
      it('pages through more than 1000 objects, complete and in order', async () => {
        const many = Array.from({ length: 1100 }, (_, i) => `many/${String(i).padStart(4, '0')}`)
        await putAll(store, shuffled(many), () => new Uint8Array(1))
        await store.put('manz', bytes('after'))
        const listed = await listKeys(store, 'many/')
        expect(listed.length).toBe(1100)
        expect(listed).toEqual(many)
        expect(await listKeys(store, 'many/10')).toEqual(many.slice(1000))
      }, 180_000)

      it('can be left early', async () => {
        await putAll(store, ['e/1', 'e/2', 'e/3'])
        for await (const o of store.list('e/')) {
          expect(o.key).toBe('e/1')
          break
        }
        expect(await listKeys(store, 'e/')).toEqual(['e/1', 'e/2', 'e/3'])
      })
    })

    describe('copy', () => {
      it('copies content to a new key and returns its info', async () => {
        const body = new Uint8Array(randomBytes(100_000))
        await store.put('src/obj', body)
        const info = await store.copy('src/obj', 'dst/deep/er/obj')
        expect(info).toMatchObject({ key: 'dst/deep/er/obj', size: body.byteLength, lastModified: expect.any(Number) })
        expectBytes(await store.get('dst/deep/er/obj'), body, 'target')
        expectBytes(await store.get('src/obj'), body, 'source')
        expect(await store.head('dst/deep/er/obj')).toMatchObject({ size: body.byteLength })
      })

      it('overwrites the target, and the copy stays independent of the source', async () => {
        await store.put('c/src', bytes('source v1'))
        await store.put('c/dst', bytes('old target, longer'))
        await store.copy('c/src', 'c/dst')
        expectBytes(await store.get('c/dst'), bytes('source v1'))
        await store.put('c/src', bytes('source v2'))
        expectBytes(await store.get('c/dst'), bytes('source v1'), 'target after the source was overwritten')
        await store.copy('c/src', 'c/dst')
        await store.copy('c/src', 'c/dst')
        expectBytes(await store.get('c/dst'), bytes('source v2'))
        await store.delete(['c/src'])
        expectBytes(await store.get('c/dst'), bytes('source v2'), 'target after the source was deleted')
        expect(await listKeys(store)).toEqual(['c/dst'])
      })

      it('copies in every mode, and an object onto itself', async () => {
        await store.put('m/src', bytes('moded'))
        for (const mode of ['auto', 'link', 'copy'] as const) {
          expect(await store.copy('m/src', `m/${mode}`, { mode })).toMatchObject({ key: `m/${mode}`, size: 5 })
          expectBytes(await store.get(`m/${mode}`), bytes('moded'), mode)
        }
        expect(await store.copy('m/src', 'm/src')).toMatchObject({ key: 'm/src', size: 5 })
        expectBytes(await store.get('m/src'), bytes('moded'))
        expect(await listKeys(store)).toEqual(['m/auto', 'm/copy', 'm/link', 'm/src'])
      })

      it('copies with a correct sizeBytes hint, in every mode, and reports that size', async () => {
        const body = new Uint8Array(randomBytes(10_000))
        await store.put('h/src', body)
        await store.put('h/empty', new Uint8Array(0))
        for (const mode of [undefined, 'auto', 'link', 'copy'] as const) {
          const to = `h/${mode ?? 'default'}`
          expect(await store.copy('h/src', to, { mode, sizeBytes: body.byteLength })).toMatchObject({ key: to, size: body.byteLength, lastModified: expect.any(Number) })
          expectBytes(await store.get(to), body, to)
        }
        expect(await store.copy('h/empty', 'h/empty2', { sizeBytes: 0 })).toMatchObject({ key: 'h/empty2', size: 0 })
        expectBytes(await store.get('h/empty2'), new Uint8Array(0))
        expect(await store.copy('h/src', 'h/src', { sizeBytes: body.byteLength })).toMatchObject({ key: 'h/src', size: body.byteLength })
        expect(await store.head('h/auto')).toMatchObject({ size: body.byteLength })
      })

      it('copies the whole source whatever a wrong sizeBytes hint says', async () => {
        await store.put('w/src', bytes('0123456789'))
        for (const hint of [0, 3, 11, 1_000_000]) {
          const info = await store.copy('w/src', `w/${hint}`, { sizeBytes: hint })
          // A store reports either what it copied or, when it skipped reading the size, the hint.
          expect([10, hint], `hint ${hint}`).toContain(info.size)
          expectBytes(await store.get(`w/${hint}`), bytes('0123456789'), `hint ${hint}`)
        }
      })

      it('rejects NOT_FOUND for a missing source with a sizeBytes hint, and writes nothing', async () => {
        await expect(store.copy('missing', 'target', { sizeBytes: 5 })).rejects.toEqual(code('NOT_FOUND'))
        await expect(store.copy('missing', 'missing', { sizeBytes: 5 })).rejects.toEqual(code('NOT_FOUND'))
        await store.put('dir/x', bytes('x'))
        await expect(store.copy('dir', 'target', { sizeBytes: 1 })).rejects.toEqual(code('NOT_FOUND'))
        expect(await store.head('target')).toBeUndefined()
        expect(await listKeys(store)).toEqual(['dir/x'])
      })

      it('copies keys with spaces and non-ASCII characters', async () => {
        await store.put('u/日本 ü%20 1', bytes('unicode source'))
        await store.copy('u/日本 ü%20 1', 'u/é 2')
        expectBytes(await store.get('u/é 2'), bytes('unicode source'))
      })

      it('rejects NOT_FOUND for a missing source and writes nothing', async () => {
        await expect(store.copy('missing', 'target')).rejects.toEqual(code('NOT_FOUND'))
        await expect(store.copy('missing', 'missing')).rejects.toEqual(code('NOT_FOUND'))
        for (const mode of ['link', 'copy'] as const) await expect(store.copy('missing', 'target', { mode })).rejects.toEqual(code('NOT_FOUND'))
        await store.put('dir/x', bytes('x'))
        await expect(store.copy('dir', 'target')).rejects.toEqual(code('NOT_FOUND'))
        expect(await store.head('target')).toBeUndefined()
        expect(await listKeys(store)).toEqual(['dir/x'])
      })
    })

    describe('delete', () => {
      it('deletes many keys, ignoring absent and repeated ones', async () => {
        const keys = Array.from({ length: 30 }, (_, i) => `d/${String(i).padStart(2, '0')}`)
        await putAll(store, keys)
        const gone = keys.filter((_, i) => i % 3 !== 0)
        await store.delete([...gone, 'd/absent', 'never/there', gone[0], gone[1]])
        expect(await listKeys(store)).toEqual(keys.filter((_, i) => i % 3 === 0))
        for (const key of gone.slice(0, 3)) {
          expect(await store.get(key)).toBeUndefined()
          expect(await store.head(key)).toBeUndefined()
        }
        await store.delete(gone)
        await store.delete([])
        expect(await listKeys(store)).toEqual(keys.filter((_, i) => i % 3 === 0))
      })

      it('does not delete the objects below a "directory" key', async () => {
        await store.put('dd/x/1', bytes('1'))
        await store.delete(['dd/x', 'dd'])
        expectBytes(await store.get('dd/x/1'), bytes('1'))
      })

      it('lets a key be written again after it was deleted', async () => {
        await store.put('again/k', bytes('one'))
        await store.delete(['again/k'])
        expect(await listKeys(store, 'again/')).toEqual([])
        await store.put('again/k', bytes('two'))
        expectBytes(await store.get('again/k'), bytes('two'))
      })
    })

    describe('key validation', () => {
      it('rejects INVALID_ARGUMENT for every bad key on every method and writes nothing', async () => {
        await store.put('good', bytes('good'))
        for (const bad of BAD_KEYS) {
          const k = bad as string
          const label = typeof bad === 'string' ? JSON.stringify(bad) : String(bad)
          const calls: [string, () => unknown][] = [
            ['put', () => store.put(k, bytes('bad'))],
            ['get', () => store.get(k)],
            ['head', () => store.head(k)],
            ['copy from', () => store.copy(k, 'copied')],
            ['copy to', () => store.copy('good', k)],
            ['delete', () => store.delete([k])],
            ['delete with a good key', () => store.delete(['good', k])],
          ]
          for (const [method, call] of calls) await expect(settle(call), `${method} ${label}`).rejects.toEqual(code('INVALID_ARGUMENT'))
        }
        expect(await listKeys(store)).toEqual(['good'])
        expectBytes(await store.get('good'), bytes('good'))
      })

      it('rejects INVALID_ARGUMENT for bad list prefixes', async () => {
        await store.put('good', bytes('good'))
        for (const bad of BAD_PREFIXES) {
          await expect(settle(() => collect(store.list(bad as string))), `list ${JSON.stringify(bad)}`).rejects.toEqual(code('INVALID_ARGUMENT'))
        }
      })
    })

    describe('streaming (getStream, putStream)', () => {
      /** The store's own streaming methods; the test is skipped for a store without them. */
      function streaming(ctx: { skip: () => void }): Required<Pick<ObjectStore, 'getStream' | 'putStream'>> {
        if (store.getStream === undefined || store.putStream === undefined) ctx.skip()
        return { getStream: store.getStream!.bind(store), putStream: store.putStream!.bind(store) }
      }

      it('has both streaming methods or neither', () => {
        expect(typeof store.getStream).toBe(typeof store.putStream)
      })

      it('round-trips multi-chunk bodies (empty, small, 12 MiB in uneven chunks) exactly, with and without sizeBytes', async (ctx) => {
        const { getStream, putStream } = streaming(ctx)
        const large = new Uint8Array(randomBytes(12 * 1024 * 1024 + 777))
        const cases: [string, Uint8Array, number[]][] = [
          ['stream/empty', new Uint8Array(0), []],
          ['stream/small', bytes('hello streaming world'), [5, 1, 0, 15]],
          ['stream/large', large, [1, 65_536, 1024 * 1024 - 1, 3 * 1024 * 1024, 8 * 1024 * 1024 + 777, 0, 1]],
        ]
        for (const [key, body, sizes] of cases) {
          for (const sized of [true, false]) {
            const before = Date.now()
            const info = await putStream(key, chunked(body, sizes), sized ? { sizeBytes: body.byteLength } : {})
            expect(info, key).toMatchObject({ key, size: body.byteLength })
            expectRecent(info, before)
            expect(await store.head(key), key).toMatchObject({ key, size: body.byteLength })
            expectBytes(await readAll(await getStream(key)), body, `${key} streamed`)
            expectBytes(await store.get(key), body, `${key} got`)
            await store.delete([key])
          }
        }
      })

      it('streams what put wrote, and get reads what putStream wrote', async (ctx) => {
        const { getStream, putStream } = streaming(ctx)
        const body = new Uint8Array(randomBytes(300_000))
        await store.put('via/put', body)
        expectBytes(await readAll(await getStream('via/put')), body)
        await putStream('via/stream', chunked(body, [100_000, 100_000, 100_000]))
        expectBytes(await store.get('via/stream'), body)
        expect(await listKeys(store)).toEqual(['via/put', 'via/stream'])
      })

      it('resolves undefined from getStream for absent keys and "directories" of other keys', async (ctx) => {
        const { getStream } = streaming(ctx)
        expect(await getStream('absent')).toBeUndefined()
        await store.put('dir/sub/x', bytes('x'))
        for (const key of ['dir', 'dir/sub', 'dir/sub/x/y']) expect(await getStream(key), key).toBeUndefined()
      })

      it('replaces an object atomically: readers see the old one until putStream resolves', async (ctx) => {
        const { getStream, putStream } = streaming(ctx)
        const old = bytes('the old body')
        await store.put('atomic', old)
        const next = new Uint8Array(randomBytes(6 * 1024 * 1024))
        const gate = deferred()
        const halfway = deferred()
        async function* body() {
          yield next.subarray(0, 3 * 1024 * 1024)
          halfway.resolve()
          await gate.promise
          yield next.subarray(3 * 1024 * 1024)
        }
        const writing = putStream('atomic', body(), { sizeBytes: next.byteLength })
        await halfway.promise
        expectBytes(await store.get('atomic'), old, 'while writing')
        expectBytes(await readAll(await getStream('atomic')), old, 'streamed while writing')
        expect(await listKeys(store)).toEqual(['atomic'])
        gate.resolve()
        expect(await writing).toMatchObject({ key: 'atomic', size: next.byteLength })
        expectBytes(await store.get('atomic'), next, 'after')
      })

      it('leaves nothing when putStream is aborted mid-body (a new key stays absent, an old object stays whole)', async (ctx) => {
        const { putStream } = streaming(ctx)
        await store.put('kept', bytes('kept'))
        for (const key of ['fresh/abort', 'kept']) {
          const ac = new AbortController()
          const stalled = deferred()
          async function* body() {
            yield new Uint8Array(randomBytes(6 * 1024 * 1024))
            stalled.resolve()
            await new Promise(() => undefined) // a source that never answers again
          }
          const writing = putStream(key, body(), { signal: ac.signal }).then(() => undefined, (err: unknown) => err)
          await stalled.promise
          ac.abort()
          expect(await writing, key).toEqual(code('ABORTED'))
        }
        expect(await store.head('fresh/abort')).toBeUndefined()
        expect(await listKeys(store)).toEqual(['kept'])
        expectBytes(await store.get('kept'), bytes('kept'))
      })

      it('leaves nothing when the body fails, rejecting with its SnapshotError or IO_ERROR', async (ctx) => {
        const { putStream } = streaming(ctx)
        await store.put('kept', bytes('kept'))
        const corrupt = new SnapshotError('CORRUPT', 'the source changed under the copy')
        for (const [failure, want] of [[corrupt, corrupt], [new Error('source read failed'), code('IO_ERROR')]] as const) {
          for (const key of ['fresh/fail', 'kept']) {
            async function* body() {
              yield new Uint8Array(randomBytes(6 * 1024 * 1024))
              yield new Uint8Array(randomBytes(1024))
              throw failure
            }
            const err = await putStream(key, body()).then(() => undefined, (e: unknown) => e)
            if (failure === corrupt) expect(err, key).toBe(want)
            else expect(err, key).toEqual(want)
          }
        }
        expect(await listKeys(store)).toEqual(['kept'])
        expectBytes(await store.get('kept'), bytes('kept'))
      })

      it('rejects IO_ERROR and writes nothing when the body is not sizeBytes long', async (ctx) => {
        const { putStream } = streaming(ctx)
        const body = new Uint8Array(randomBytes(1000))
        for (const sizeBytes of [999, 1001, 0]) {
          await expect(putStream('sized', chunked(body, [400, 600]), { sizeBytes }), `sizeBytes ${sizeBytes}`).rejects.toEqual(code('IO_ERROR'))
        }
        expect(await store.head('sized')).toBeUndefined()
        expect(await listKeys(store)).toEqual([])
      })

      it('rejects a body that is not an async iterable, and a bad sizeBytes, with a TypeError', async (ctx) => {
        const { putStream } = streaming(ctx)
        await expect(settle(() => putStream('t', new Uint8Array(3) as unknown as AsyncIterable<Uint8Array>))).rejects.toThrow(TypeError)
        await expect(settle(() => putStream('t', chunked(bytes('abc'), [3]), { sizeBytes: -1 }))).rejects.toThrow(TypeError)
        await expect(settle(() => putStream('t', chunked(bytes('abc'), [3]), { sizeBytes: '3' as unknown as number }))).rejects.toThrow(TypeError)
        expect(await listKeys(store)).toEqual([])
      })

      it('can be left early, and the object can then be replaced and deleted', async (ctx) => {
        const { getStream, putStream } = streaming(ctx)
        const body = new Uint8Array(randomBytes(4 * 1024 * 1024))
        await store.put('early', body)
        for (let i = 0; i < 3; i++) {
          const stream = await getStream('early')
          for await (const chunk of stream!) {
            expect(chunk.byteLength).toBeGreaterThan(0)
            break
          }
        }
        await (await getStream('early'))![Symbol.asyncIterator]().return?.()
        await putStream('early', chunked(bytes('new'), [3]))
        expectBytes(await store.get('early'), bytes('new'))
        await store.delete(['early'])
        expect(await getStream('early')).toBeUndefined()
      })

      it('rejects ABORTED before the first chunk, and throws ABORTED while iterating once the signal fires', async (ctx) => {
        const { getStream, putStream } = streaming(ctx)
        const body = new Uint8Array(randomBytes(4 * 1024 * 1024))
        await store.put('signal', body)
        const fired = AbortSignal.abort()
        await expect(settle(() => getStream('signal', { signal: fired }))).rejects.toEqual(code('ABORTED'))
        await expect(settle(() => putStream('signal2', chunked(body, [1]), { signal: fired }))).rejects.toEqual(code('ABORTED'))
        const ac = new AbortController()
        const stream = await getStream('signal', { signal: ac.signal })
        const it = stream![Symbol.asyncIterator]()
        await it.next()
        ac.abort()
        const rest = (async () => {
          for (;;) if ((await it.next()).done === true) return undefined
        })().then(() => 'completed', (err: unknown) => err)
        expect(await rest).toEqual(code('ABORTED'))
        expect(await listKeys(store)).toEqual(['signal'])
      })

      it('rejects INVALID_ARGUMENT for bad keys before reading the body', async (ctx) => {
        const { getStream, putStream } = streaming(ctx)
        for (const bad of BAD_KEYS) {
          let pulled = false
          async function* body() {
            pulled = true
            yield bytes('x')
          }
          await expect(settle(() => getStream(bad as string)), `getStream ${String(bad)}`).rejects.toEqual(code('INVALID_ARGUMENT'))
          await expect(settle(() => putStream(bad as string, body())), `putStream ${String(bad)}`).rejects.toEqual(code('INVALID_ARGUMENT'))
          expect(pulled).toBe(false)
        }
        expect(await listKeys(store)).toEqual([])
      })

      it('round-trips through readObjectStream and writeObjectStream (the store\'s methods, or the fallback over get and put)', async () => {
        const body = new Uint8Array(randomBytes(2 * 1024 * 1024 + 3))
        expect(await writeObjectStream(store, 'helpers/x', chunked(body, [1024 * 1024, 1, 1024 * 1024 + 2]), { sizeBytes: body.byteLength })).toMatchObject({ size: body.byteLength })
        expectBytes(await readAll(await readObjectStream(store, 'helpers/x')), body)
        expect(await readObjectStream(store, 'helpers/absent')).toBeUndefined()
        await expect(writeObjectStream(store, 'helpers/y', chunked(body, [5]), { sizeBytes: 6 })).rejects.toEqual(code('IO_ERROR'))
        expect(await listKeys(store)).toEqual(['helpers/x'])
      })
    })

    describe('abort signals', () => {
      it('rejects ABORTED when the signal already fired, and writes or deletes nothing', async () => {
        await store.put('keep', bytes('keep'))
        const signal = AbortSignal.abort(new Error('test abort'))
        const calls: [string, () => unknown][] = [
          ['put', () => store.put('new', bytes('new'), { signal })],
          ['get', () => store.get('keep', { signal })],
          ['head', () => store.head('keep', { signal })],
          ['list', () => collect(store.list('', { signal }))],
          ['copy', () => store.copy('keep', 'copied', { signal })],
          ['delete', () => store.delete(['keep'], { signal })],
        ]
        for (const [method, call] of calls) await expect(settle(call), method).rejects.toEqual(code('ABORTED'))
        expect(await listKeys(store)).toEqual(['keep'])
        expectBytes(await store.get('keep'), bytes('keep'))
      })

      it('never leaves a partial object when a put is aborted in flight', async (ctx) => {
        if (fx.skip?.includes('abortInFlight')) ctx.skip()
        const body = new Uint8Array(randomBytes(2 * 1024 * 1024))
        for (const delay of [0, 1, 3]) {
          const key = `inflight/${delay}`
          const ac = new AbortController()
          const pending = store.put(key, body, { signal: ac.signal }).then(() => undefined, (err: unknown) => err)
          for (let i = 0; i < delay; i++) await tick()
          ac.abort()
          const err = await pending
          if (err !== undefined) expect(err).toEqual(code('ABORTED'))
          const got = await store.get(key)
          if (err === undefined || got !== undefined) expectBytes(got, body, key)
        }
      })
    })
  })
}
