import { SnapshotError, throwIfAborted } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { forEachLimit } from '../util/for-each-limit.js'
import { Mutex } from '../util/mutex.js'
import { isMetaConflict, prefixRange, type MetaExpectation, type MetaOperation, type MetaRange, type MetaStore } from './meta-store.js'
import { keys } from './keys.js'

/** Point reads in flight in {@link MetaTxn.getMany}, by default. */
const GET_MANY_CONCURRENCY = 64

/** Entries a {@link GetManyOptions.scan} may read beyond twice the number of keys it looks for before it gives up. */
const SCAN_SLACK = 1024

/** Options of {@link MetaTxn.getMany}. */
export interface GetManyOptions {
  /**
   * A range that holds most of the keys, and little else: they are read with one scan of it
   * instead of a `get` each (much cheaper per key). The scan stops once it has read about
   * twice as many entries as there are keys; keys it did not find are read with `get`s, so
   * the result does not depend on the range, only the cost does.
   */
  scan?: MetaRange
  /** Point reads in flight. @default 64 */
  concurrency?: number
}

/**
 * A read-modify-write transaction over a MetaStore. Point reads are recorded; on commit,
 * all writes go in one atomic batch that (on stores with cross-process conditional batches)
 * also asserts every recorded read is unchanged, so no update is lost. Range reads are not
 * validated: callers `get` every record (or change counter) their decision depends on.
 */
export class MetaTxn {
  readonly #store: MetaStore
  readonly #reads = new Map<string, string | undefined>()
  readonly #writes = new Map<string, string | undefined>()
  readonly signal: AbortSignal | undefined

  constructor(store: MetaStore, signal?: AbortSignal) {
    this.#store = store
    this.signal = signal
  }

  /** Reads a key, seeing this transaction's own writes first. */
  async get(key: string): Promise<string | undefined> {
    if (this.#writes.has(key)) return this.#writes.get(key)
    if (this.#reads.has(key)) return this.#reads.get(key)
    const value = await this.#store.get(key, { signal: this.signal })
    this.#reads.set(key, value)
    return value
  }

  /**
   * Reads many keys, each as {@link MetaTxn.get} reads it (this transaction's writes
   * first; every value read is recorded, so the commit validates it), and resolves their
   * values in the order of `keys`.
   */
  async getMany(keys: readonly string[], options: GetManyOptions = {}): Promise<(string | undefined)[]> {
    const concurrency = options.concurrency ?? GET_MANY_CONCURRENCY
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new TypeError(`Expected \`concurrency\` to be ≥ 1, got \`${concurrency}\``)
    const out = new Array<string | undefined>(keys.length)
    /** Keys still to read → the first index asking for them. */
    const pending = new Map<string, number>()
    const repeats: number[] = []
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (this.#writes.has(key)) out[i] = this.#writes.get(key)
      else if (this.#reads.has(key)) out[i] = this.#reads.get(key)
      else if (pending.has(key)) repeats.push(i)
      else pending.set(key, i)
    }
    if (options.scan !== undefined && pending.size > 0) {
      const budget = 2 * pending.size + SCAN_SLACK
      let scanned = 0
      for await (const [key, value] of this.#store.iterate(options.scan, { signal: this.signal })) {
        const i = pending.get(key)
        if (i !== undefined && !this.#reads.has(key) && !this.#writes.has(key)) {
          this.#reads.set(key, value)
          out[i] = value
          pending.delete(key)
          if (pending.size === 0) break
        }
        if (++scanned >= budget) break
      }
    }
    if (pending.size > 0) {
      await forEachLimit([...pending], concurrency, async ([key, i]) => {
        out[i] = await this.get(key)
      }, this.signal)
    }
    for (const i of repeats) out[i] = this.#writes.has(keys[i]) ? this.#writes.get(keys[i]) : this.#reads.get(keys[i])
    return out
  }

  /** Reads and parses a JSON record. */
  async getJson<T>(key: string): Promise<T | undefined> {
    const value = await this.get(key)
    return value === undefined ? undefined : (JSON.parse(value) as T)
  }

  /** Iterates the store (not this transaction's pending writes) over a range. */
  iterate(range: MetaRange): AsyncIterable<[string, string]> {
    return this.#store.iterate(range, { signal: this.signal })
  }

  /** Whether the store holds any key starting with `prefix` (a range read, like `iterate`). */
  async hasPrefix(prefix: string): Promise<boolean> {
    for await (const _ of this.iterate({ ...prefixRange(prefix), limit: 1 })) return true
    return false
  }

  put(key: string, value: string): void {
    this.#writes.set(key, value)
  }

  putJson(key: string, value: unknown): void {
    this.put(key, JSON.stringify(value))
  }

  del(key: string): void {
    this.#writes.set(key, undefined)
  }

  /**
   * Allocates `count` consecutive IDs and returns the first. IDs come from a block this
   * process reserved from the persistent allocator (see {@link IdBlocks}), so most calls
   * read and write no key: transactions in many processes do not all contend on one.
   * IDs a transaction took stay used if it does not commit (gaps are harmless).
   */
  allocIds(count = 1): Promise<number> {
    if (!Number.isSafeInteger(count) || count < 1) throw new TypeError(`Expected \`count\` to be ≥ 1, got \`${count}\``)
    return idBlocksOf(this.#store).take(count, this.signal)
  }

  /** True when the transaction has something to write. */
  get dirty(): boolean {
    return this.#writes.size > 0
  }

  /** @internal */
  operations(): MetaOperation[] {
    const ops: MetaOperation[] = []
    for (const [key, value] of this.#writes) {
      ops.push(value === undefined ? { type: 'del', key } : { type: 'put', key, value })
    }
    return ops
  }

  /** @internal */
  expectations(): MetaExpectation[] {
    return [...this.#reads].map(([key, value]) => ({ key, value }))
  }
}

/** IDs a process reserves from the persistent allocator at a time. */
export const ID_BLOCK_SIZE = 256

/**
 * The IDs this process reserved from the persistent allocator (`keys.nextId`) and has not
 * handed out yet. A reservation is its own small conditional batch (retried on a
 * conflict with another process), made when the block runs out; a request larger than a
 * block reserves exactly its size. IDs are unique across processes, ascending within one
 * process, and not ordered across processes. A crash loses the rest of a block (a gap).
 * @internal
 */
export class IdBlocks {
  readonly #store: MetaStore
  #next = 0
  #end = 0
  #reserving: Promise<void> = Promise.resolve()

  constructor(store: MetaStore) {
    this.#store = store
  }

  /** Takes `count` consecutive IDs; resolves the first. */
  async take(count: number, signal?: AbortSignal): Promise<number> {
    // One reservation at a time, so that concurrent takers never split a block.
    const turn = this.#reserving.then(async () => {
      if (this.#end - this.#next < count) await this.#reserve(Math.max(count, ID_BLOCK_SIZE), signal)
    })
    this.#reserving = turn.catch(() => undefined)
    await turn
    const first = this.#next
    this.#next += count
    return first
  }

  async #reserve(size: number, signal: AbortSignal | undefined): Promise<void> {
    const shared = this.#store.capabilities.sharedConditionalBatch
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal)
      const raw = await this.#store.get(keys.nextId, { signal })
      const first = raw === undefined ? 1 : Number(raw)
      const end = first + size
      if (!Number.isSafeInteger(end)) throw new SnapshotError('FAILED_PRECONDITION', 'the ID allocator is exhausted')
      try {
        await this.#store.batch([{ type: 'put', key: keys.nextId, value: String(end) }], shared ? { signal, expect: [{ key: keys.nextId, value: raw }] } : { signal })
      } catch (err) {
        if (isMetaConflict(err) && attempt < 64) continue
        throw err
      }
      this.#next = first
      this.#end = end
      return
    }
  }
}

const idBlocks = new WeakMap<MetaStore, IdBlocks>()

/** The ID blocks of `store` (one per store object, shared by every transactor over it). */
function idBlocksOf(store: MetaStore): IdBlocks {
  let blocks = idBlocks.get(store)
  if (blocks === undefined) idBlocks.set(store, (blocks = new IdBlocks(store)))
  return blocks
}

const storeLocks = new WeakMap<MetaStore, Mutex>()

/**
 * Runs transactions one at a time in this process (so catalog, snapshot, restore and GC
 * mutations serialize) and retries on cross-process conflicts. Reads that decide nothing
 * they write use {@link Transactor.read}, which takes no lock.
 */
export class Transactor {
  readonly store: MetaStore
  readonly #mutex: Mutex
  readonly #maxAttempts: number

  constructor(store: MetaStore, maxAttempts = 16) {
    this.store = store
    this.#maxAttempts = maxAttempts
    // One lock per store, so several managers sharing a store in one process also serialize.
    let mutex = storeLocks.get(store)
    if (mutex === undefined) storeLocks.set(store, (mutex = new Mutex()))
    this.#mutex = mutex
  }

  /**
   * Runs `fn` over a read-only transaction, without the lock: it never waits behind a
   * long write. What it reads is each key's latest committed value (a range read is one
   * consistent snapshot); it writes nothing, and anything `fn` writes is refused.
   */
  async read<T>(fn: (tx: MetaTxn) => Promise<T>, options: AbortOptions = {}): Promise<T> {
    throwIfAborted(options.signal)
    const tx = new MetaTxn(this.store, options.signal)
    const result = await fn(tx)
    if (tx.dirty) throw new TypeError('a read-only transaction wrote: use Transactor.run for writes')
    return result
  }

  /**
   * Runs `fn` in a fresh transaction and commits its writes atomically. `fn` may run
   * more than once (after a conflict with another process), so it must not have side
   * effects outside the transaction. A fired `signal` also stops the wait for the lock.
   */
  run<T>(fn: (tx: MetaTxn) => Promise<T>, options: AbortOptions = {}): Promise<T> {
    const { signal } = options
    return this.#mutex.run(async () => {
      for (let attempt = 1; ; attempt++) {
        throwIfAborted(signal)
        const tx = new MetaTxn(this.store, signal)
        const result = await fn(tx)
        try {
          if (!tx.dirty) return result
          const shared = this.store.capabilities.sharedConditionalBatch
          await this.store.batch(tx.operations(), shared ? { signal, expect: tx.expectations() } : { signal })
          return result
        } catch (err) {
          if (!isMetaConflict(err) || attempt >= this.#maxAttempts) throw err
          await new Promise((r) => setTimeout(r, Math.min(200, 2 ** attempt) * Math.random()))
        }
      }
    }, { signal })
  }
}
