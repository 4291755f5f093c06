import { SnapshotError } from '../../src/errors.js'
import type {
  MetaBatchOptions,
  MetaOperation,
  MetaRange,
  MetaStore,
  MetaStoreCapabilities,
  StoreStatus,
} from '../../src/meta/meta-store.js'
import type { AbortOptions } from '../../src/types.js'

/** Options of {@link MapMetaStore}. */
export interface MapMetaStoreOptions {
  /** The backing map; share one between stores to simulate several processes over one backend. */
  data?: Map<string, string>
  /** Advertise (and honour) conditional batches across the stores sharing `data`, as etcd does. @default true */
  sharedConditionalBatch?: boolean
  /** Awaited before each batch is checked and applied; lets a test interleave transactions. */
  gate?: (operations: readonly MetaOperation[]) => Promise<void>
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

function inRange(key: string, r: MetaRange): boolean {
  if (r.gt !== undefined && utf8Compare(key, r.gt) <= 0) return false
  if (r.gte !== undefined && utf8Compare(key, r.gte) < 0) return false
  if (r.lt !== undefined && utf8Compare(key, r.lt) >= 0) return false
  if (r.lte !== undefined && utf8Compare(key, r.lte) > 0) return false
  return true
}

/**
 * A tiny MetaStore over a `Map`, for tests. Two stores over one `data` map behave like two
 * processes over one etcd: each has its own object (so its own transaction lock), and
 * conditional batches are checked against the shared map atomically.
 */
export class MapMetaStore implements MetaStore {
  readonly capabilities: MetaStoreCapabilities
  readonly data: Map<string, string>
  /** Batches applied by this store. */
  batches = 0
  /** Batches rejected for a conflict. */
  conflicts = 0
  #status: StoreStatus = 'closed'
  readonly #gate: MapMetaStoreOptions['gate']

  constructor(options: MapMetaStoreOptions = {}) {
    this.data = options.data ?? new Map()
    this.capabilities = Object.freeze({ sharedConditionalBatch: options.sharedConditionalBatch ?? true, maxBatchOps: Infinity })
    this.#gate = options.gate
  }

  get status(): StoreStatus {
    return this.#status
  }

  async open(): Promise<void> {
    this.#status = 'open'
  }

  async close(): Promise<void> {
    this.#status = 'closed'
  }

  #check(options: AbortOptions = {}): void {
    if (this.#status !== 'open') throw new SnapshotError('NOT_OPEN', 'the map meta store is not open')
    if (options.signal?.aborted) throw new SnapshotError('ABORTED', 'the operation was aborted', { cause: options.signal.reason })
  }

  async get(key: string, options?: AbortOptions): Promise<string | undefined> {
    this.#check(options)
    await new Promise((r) => setImmediate(r))
    return this.data.get(key)
  }

  async batch(operations: readonly MetaOperation[], options: MetaBatchOptions = {}): Promise<void> {
    this.#check(options)
    await this.#gate?.(operations)
    this.#check(options)
    const conflicts = (options.expect ?? []).filter((e) => this.data.get(e.key) !== e.value).map((e) => e.key)
    if (conflicts.length > 0) {
      this.conflicts++
      throw new SnapshotError('FAILED_PRECONDITION', `conditional batch conflict: ${conflicts.join(', ')}`, { details: { conflict: true, keys: conflicts } })
    }
    for (const op of operations) {
      if (op.type === 'put') this.data.set(op.key, op.value)
      else this.data.delete(op.key)
    }
    this.batches++
  }

  async *iterate(range: MetaRange = {}, options?: AbortOptions): AsyncGenerator<[string, string]> {
    this.#check(options)
    const entries = [...this.data].filter(([k]) => inRange(k, range)).sort(([a], [b]) => utf8Compare(a, b))
    if (range.reverse === true) entries.reverse()
    const limited = range.limit === undefined ? entries : entries.slice(0, range.limit)
    for (const entry of limited) {
      await new Promise((r) => setImmediate(r))
      this.#check(options)
      yield entry
    }
  }
}
