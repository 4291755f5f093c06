import { SnapshotError, abortError, toIoError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import type { MetaBatchOptions, MetaExpectation, MetaOperation, MetaRange, MetaStore, MetaStoreCapabilities, StoreStatus } from './meta-store.js'

const RANGE_BOUNDS = ['gt', 'gte', 'lt', 'lte'] as const

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

/** Throws a `TypeError` unless `key` is a non-empty string. */
export function assertMetaKey(key: unknown, name = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TypeError(`Expected \`${name}\` to be a non-empty string, got \`${describe(key)}\``)
  }
}

/** Throws a `TypeError` unless `operations` is an array of valid put/del operations. */
export function assertMetaOperations(operations: unknown): asserts operations is readonly MetaOperation[] {
  if (!Array.isArray(operations)) throw new TypeError(`Expected \`operations\` to be an array, got \`${describe(operations)}\``)
  operations.forEach((op: unknown, i) => {
    if (typeof op !== 'object' || op === null) throw new TypeError(`Expected \`operations[${i}]\` to be an object, got \`${describe(op)}\``)
    const { type, key, value } = op as { type?: unknown; key?: unknown; value?: unknown }
    if (type !== 'put' && type !== 'del') {
      throw new TypeError(`Expected \`operations[${i}].type\` to be 'put' or 'del', got \`${describe(type)}\``)
    }
    assertMetaKey(key, `operations[${i}].key`)
    if (type === 'put' && typeof value !== 'string') {
      throw new TypeError(`Expected \`operations[${i}].value\` to be a string, got \`${describe(value)}\``)
    }
  })
}

/** Throws a `TypeError` unless `expect` is absent or an array of `{ key, value: string | undefined }`. */
export function assertMetaExpectations(expect: unknown): asserts expect is readonly MetaExpectation[] | undefined {
  if (expect === undefined) return
  if (!Array.isArray(expect)) throw new TypeError(`Expected \`expect\` to be an array, got \`${describe(expect)}\``)
  expect.forEach((e: unknown, i) => {
    if (typeof e !== 'object' || e === null) throw new TypeError(`Expected \`expect[${i}]\` to be an object, got \`${describe(e)}\``)
    const { key, value } = e as { key?: unknown; value?: unknown }
    assertMetaKey(key, `expect[${i}].key`)
    if (value !== undefined && typeof value !== 'string') {
      throw new TypeError(`Expected \`expect[${i}].value\` to be a string or undefined, got \`${describe(value)}\``)
    }
  })
}

/** Throws a `TypeError` unless `range` is absent or a valid {@link MetaRange}. */
export function assertMetaRange(range: unknown): asserts range is MetaRange | undefined {
  if (range === undefined) return
  if (typeof range !== 'object' || range === null) throw new TypeError(`Expected \`range\` to be an object, got \`${describe(range)}\``)
  const r = range as Record<string, unknown>
  for (const bound of RANGE_BOUNDS) {
    if (r[bound] !== undefined && typeof r[bound] !== 'string') {
      throw new TypeError(`Expected \`range.${bound}\` to be a string, got \`${describe(r[bound])}\``)
    }
  }
  if (r.limit !== undefined && (typeof r.limit !== 'number' || Number.isNaN(r.limit) || r.limit < 0)) {
    throw new TypeError(`Expected \`range.limit\` to be ≥ 0, got \`${describe(r.limit)}\``)
  }
  if (r.reverse !== undefined && typeof r.reverse !== 'boolean') {
    throw new TypeError(`Expected \`range.reverse\` to be a boolean, got \`${describe(r.reverse)}\``)
  }
}

function checkSignal(signal: AbortSignal | undefined): void {
  if (signal !== undefined && (typeof signal !== 'object' || signal === null || typeof signal.aborted !== 'boolean')) {
    throw new TypeError(`Expected \`signal\` to be an AbortSignal, got \`${describe(signal)}\``)
  }
  if (signal?.aborted) throw abortError(signal)
}

/**
 * The MetaStore the core uses: an adapter behind argument checks and error mapping,
 * so adapters stay thin (as abstract-level's public/private split).
 */
class GuardedMetaStore implements MetaStore {
  readonly #inner: MetaStore

  constructor(inner: MetaStore) {
    this.#inner = inner
  }

  get capabilities(): MetaStoreCapabilities {
    return this.#inner.capabilities
  }

  get status(): StoreStatus {
    return this.#inner.status
  }

  async open(options: AbortOptions = {}): Promise<void> {
    checkSignal(options.signal)
    try {
      await this.#inner.open(options)
    } catch (err) {
      throw toIoError(err, 'opening the meta store', options.signal)
    }
  }

  async close(): Promise<void> {
    try {
      await this.#inner.close()
    } catch (err) {
      throw toIoError(err, 'closing the meta store')
    }
  }

  async get(key: string, options: AbortOptions = {}): Promise<string | undefined> {
    assertMetaKey(key)
    checkSignal(options.signal)
    let value: unknown
    try {
      value = await this.#inner.get(key, options)
    } catch (err) {
      throw toIoError(err, `meta get ${JSON.stringify(key)}`, options.signal)
    }
    if (value !== undefined && typeof value !== 'string') {
      throw new SnapshotError('IO_ERROR', `meta get ${JSON.stringify(key)} returned a ${typeof value}, not a string`)
    }
    return value
  }

  async batch(operations: readonly MetaOperation[], options: MetaBatchOptions = {}): Promise<void> {
    assertMetaOperations(operations)
    assertMetaExpectations(options.expect)
    checkSignal(options.signal)
    try {
      await this.#inner.batch(operations, options)
    } catch (err) {
      throw toIoError(err, `meta batch of ${operations.length} operations`, options.signal)
    }
  }

  async *iterate(range: MetaRange = {}, options: AbortOptions = {}): AsyncGenerator<[string, string]> {
    assertMetaRange(range)
    checkSignal(options.signal)
    try {
      for await (const entry of this.#inner.iterate(range, options)) {
        checkSignal(options.signal)
        yield entry
      }
    } catch (err) {
      throw toIoError(err, 'meta iterate', options.signal)
    }
  }
}

const guarded = new WeakMap<MetaStore, MetaStore>()
const wrappers = new WeakSet<MetaStore>()

/**
 * Wraps `store` once for the core: rejects wrong argument types with a `TypeError`
 * (programmer misuse), rejects calls whose `signal` already fired with `ABORTED`, and
 * turns any failure that is not a `SnapshotError` into `IO_ERROR` (the failure is the
 * `cause`). Idempotent: a guarded store is returned as is, and guarding the same store
 * twice returns the same wrapper (so per-store locks are shared).
 */
export function guardMetaStore(store: MetaStore): MetaStore {
  if (wrappers.has(store)) return store
  let wrapper = guarded.get(store)
  if (wrapper === undefined) {
    wrapper = new GuardedMetaStore(store)
    wrappers.add(wrapper)
    guarded.set(store, wrapper)
  }
  return wrapper
}
