import type { MetaBatchOptions, MetaOperation, MetaStore } from '../../src/meta/meta-store.js'
import type { CopyOptions, ObjectStore } from '../../src/storage/object-store.js'
import type { AbortOptions } from '../../src/types.js'
import { DelegatingMetaStore } from './delegating-meta-store.js'

/** What a crash plan counts. `batch` is the only MetaStore write; the rest are ObjectStore writes. */
export type WriteKind = 'batch' | 'put' | 'copy' | 'delete'

/** The error every injected failure throws. */
export class InjectedCrash extends Error {
  constructor(readonly kind: WriteKind, readonly n: number) {
    super(`injected crash at write #${n} (${kind})`)
    this.name = 'InjectedCrash'
  }
}

/** Options of {@link CrashPlan}. */
export interface CrashPlanOptions {
  /**
   * `crash` (default): from the N-th write on, every write fails, as if the process had
   * died; reopen the underlying stores to recover. `once`: only the N-th write fails.
   */
  mode?: 'crash' | 'once'
}

/**
 * Counts writes across every store wrapped with it (so N spans MetaStore batches and
 * ObjectStore puts/copies/deletes in the order an operation issues them) and fails the
 * N-th one once armed.
 */
export class CrashPlan {
  /** Writes seen so far (including failed ones). */
  writes = 0
  /** Every write seen, in order. */
  readonly log: { n: number; kind: WriteKind; detail: string }[] = []
  #failAt = Infinity
  #mode: 'crash' | 'once'
  #crashed = false

  constructor(options: CrashPlanOptions = {}) {
    this.#mode = options.mode ?? 'crash'
  }

  /** Fails the `n`-th write from now (1 = the next one). */
  armIn(n: number, options: CrashPlanOptions = {}): void {
    this.#failAt = this.writes + n
    this.#mode = options.mode ?? this.#mode
    this.#crashed = false
  }

  /** No more failures. */
  disarm(): void {
    this.#failAt = Infinity
    this.#crashed = false
  }

  /** True once the injected failure happened. */
  get crashed(): boolean {
    return this.#crashed
  }

  /** @internal Called before each write; throws when it must fail. */
  before(kind: WriteKind, detail: string): void {
    const n = ++this.writes
    this.log.push({ n, kind, detail })
    if (n === this.#failAt || (this.#crashed && this.#mode === 'crash')) {
      this.#crashed = true
      throw new InjectedCrash(kind, n)
    }
  }
}

/** A MetaStore whose `batch` counts as a write of `plan`. Reads pass through. */
class CrashingMetaStore extends DelegatingMetaStore {
  constructor(inner: MetaStore, readonly plan: CrashPlan) {
    super(inner)
  }

  override async batch(ops: readonly MetaOperation[], o?: MetaBatchOptions): Promise<void> {
    this.plan.before('batch', `${ops.length} ops`)
    return this.inner.batch(ops, o)
  }
}

/** Wraps a MetaStore so that `batch` counts as a write of `plan`. Reads pass through. */
export function crashingMetaStore(inner: MetaStore, plan: CrashPlan): MetaStore {
  return new CrashingMetaStore(inner, plan)
}

/** Wraps an ObjectStore so that `put`, `copy` and `delete` count as writes of `plan`. */
export function crashingObjectStore(inner: ObjectStore, plan: CrashPlan): ObjectStore {
  return {
    get capabilities() {
      return inner.capabilities
    },
    get: (key: string, o?: AbortOptions) => inner.get(key, o),
    head: (key: string, o?: AbortOptions) => inner.head(key, o),
    list: (prefix: string, o?: AbortOptions) => inner.list(prefix, o),
    async put(key: string, body: Uint8Array, o?: AbortOptions) {
      plan.before('put', key)
      return inner.put(key, body, o)
    },
    async copy(from: string, to: string, o?: CopyOptions) {
      plan.before('copy', `${from} -> ${to}`)
      return inner.copy(from, to, o)
    },
    async delete(keys: readonly string[], o?: AbortOptions) {
      plan.before('delete', keys.join(','))
      return inner.delete(keys, o)
    },
    close: async () => {
      await inner.close?.()
    },
  }
}

/**
 * Wraps an ObjectStore and counts calls per method (the manifest reuse test counts the
 * puts a snapshot makes).
 */
export class CountingObjectStore implements ObjectStore {
  readonly calls = { put: 0, get: 0, head: 0, list: 0, copy: 0, delete: 0 }
  /** Keys put, in order. */
  readonly putKeys: string[] = []
  readonly #inner: ObjectStore

  constructor(inner: ObjectStore) {
    this.#inner = inner
  }

  get capabilities() {
    return this.#inner.capabilities
  }

  put(key: string, body: Uint8Array, o?: AbortOptions) {
    this.calls.put++
    this.putKeys.push(key)
    return this.#inner.put(key, body, o)
  }

  get(key: string, o?: AbortOptions) {
    this.calls.get++
    return this.#inner.get(key, o)
  }

  head(key: string, o?: AbortOptions) {
    this.calls.head++
    return this.#inner.head(key, o)
  }

  list(prefix: string, o?: AbortOptions) {
    this.calls.list++
    return this.#inner.list(prefix, o)
  }

  copy(from: string, to: string, o?: CopyOptions) {
    this.calls.copy++
    return this.#inner.copy(from, to, o)
  }

  delete(keys: readonly string[], o?: AbortOptions) {
    this.calls.delete++
    return this.#inner.delete(keys, o)
  }

  async close() {
    await this.#inner.close?.()
  }

  /** Resets the counters. */
  reset(): void {
    for (const k of Object.keys(this.calls) as (keyof typeof this.calls)[]) this.calls[k] = 0
    this.putKeys.length = 0
  }
}
