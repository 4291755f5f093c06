import { CompareResult, CompareTarget, Etcd3, SortOrder, SortTarget, type ICompare, type IOptions, type IRequestOp } from 'etcd3'
import { SnapshotError, abortError, throwIfAborted, toIoError } from '../errors.js'
import { EtcdLeadership } from '../cluster/etcd-leadership.js'
import type { CreateLeadershipOptions, LeadershipSource } from '../cluster/leadership.js'
import type { AbortOptions } from '../types.js'
import { assertMetaExpectations, assertMetaOperations } from './guarded-meta-store.js'
import { metaConflictError, type MetaBatchOptions, type MetaOperation, type MetaRange, type MetaStore, type MetaStoreCapabilities, type StoreStatus } from './meta-store.js'

/** Options of {@link EtcdMetaStore}. */
export interface EtcdMetaStoreOptions {
  /** etcd endpoints, e.g. `'http://127.0.0.1:2379'`. Required unless `client.hosts` is set. */
  hosts?: string | string[]
  /**
   * Every key is stored under this prefix, so several deployments can share a cluster.
   * @default 'vecsnap/'
   */
  prefix?: string
  /** Passed to the etcd3 `Etcd3` constructor (credentials, auth, grpcOptions, dialTimeout, faultHandling, …). */
  client?: Partial<IOptions>
  /**
   * Largest number of writes, and separately of expectations, one batch may carry (etcd checks
   * each against `--max-txn-ops`). Must not exceed the cluster's setting (etcd's default is 128).
   * @default 128
   */
  maxTxnOps?: number
  /**
   * Keys fetched per range request while iterating.
   * @default 1000
   */
  pageSize?: number
  /**
   * How long `open()` waits for the cluster to answer before rejecting with `IO_ERROR`.
   * @default 10000
   */
  connectTimeoutMs?: number
}

const ZERO = Buffer.from([0])

/** The smallest byte string greater than every string starting with `prefix`; `undefined` when none exists. */
function bytesAfterPrefix(prefix: Buffer): Buffer | undefined {
  let end = prefix.length
  while (end > 0 && prefix[end - 1] === 0xff) end--
  if (end === 0) return undefined
  const out = Buffer.from(prefix.subarray(0, end))
  out[end - 1]++
  return out
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Rejects with `ABORTED` as soon as `signal` fires, whatever `promise` does. */
function raced<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal))
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

/**
 * The MetaStore on etcd v3 (`import { EtcdMetaStore } from 'vecsnap/etcd'`), so several
 * processes can share one vecsnap deployment. Needs the optional peer dependency `etcd3`.
 *
 * Every batch is one etcd transaction, and `expect` becomes its compares, so conditional
 * batches hold across processes (`capabilities.sharedConditionalBatch` is true). A batch is
 * never split: one with more than `maxTxnOps` operations rejects with `INVALID_ARGUMENT`.
 * `iterate` pages through the range at the revision of its first page (a consistent
 * snapshot); a compaction of that revision mid-iteration rejects with `IO_ERROR`.
 * Descending iteration is served by etcd re-sorting each page, so prefer ascending order
 * for large ranges.
 *
 * @example
 * import { EtcdMetaStore } from 'vecsnap/etcd'
 * const meta = new EtcdMetaStore({ hosts: 'http://127.0.0.1:2379', prefix: 'prod/vecsnap/' })
 */
export class EtcdMetaStore implements MetaStore, LeadershipSource {
  /** `sharedConditionalBatch: true`, `maxBatchOps: maxTxnOps`. */
  readonly capabilities: MetaStoreCapabilities
  /** The key prefix in etcd. */
  readonly prefix: string
  readonly #prefix: Buffer
  readonly #clientOptions: IOptions
  readonly #maxTxnOps: number
  readonly #pageSize: number
  readonly #connectTimeoutMs: number
  #client: Etcd3 | undefined
  #status: StoreStatus = 'closed'
  #opening: Promise<void> | undefined
  #closing: Promise<void> | undefined

  /** Validates the options; no connection is made before `open()`. Throws a `TypeError` on bad options. */
  constructor(options: EtcdMetaStoreOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`Expected \`options\` to be an object, got \`${String(options)}\``)
    const { prefix = 'vecsnap/', client = {}, maxTxnOps = 128, pageSize = 1000, connectTimeoutMs = 10_000 } = options
    const hosts = options.hosts ?? client.hosts
    const list = Array.isArray(hosts) ? hosts : [hosts]
    if (list.length === 0 || !list.every((h) => typeof h === 'string' && h.length > 0)) {
      throw new TypeError(`Expected \`hosts\` to be a non-empty string or array of strings, got \`${JSON.stringify(hosts)}\``)
    }
    if (typeof prefix !== 'string') throw new TypeError(`Expected \`prefix\` to be a string, got \`${String(prefix)}\``)
    for (const [name, value] of [['maxTxnOps', maxTxnOps], ['pageSize', pageSize], ['connectTimeoutMs', connectTimeoutMs]] as const) {
      if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`Expected \`${name}\` to be ≥ 1, got \`${String(value)}\``)
    }
    this.prefix = prefix
    this.#prefix = Buffer.from(prefix, 'utf8')
    this.#clientOptions = { ...client, hosts: hosts as string | string[] }
    this.#maxTxnOps = maxTxnOps
    this.#pageSize = pageSize
    this.#connectTimeoutMs = connectTimeoutMs
    this.capabilities = Object.freeze({ sharedConditionalBatch: true, maxBatchOps: maxTxnOps })
  }

  /** `opening` → `open` → `closing` → `closed`. Starts `closed`. */
  get status(): StoreStatus {
    return this.#status
  }

  /** Creates the client and checks that the cluster answers. Idempotent; after `close()` it opens again. */
  async open(options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal)
    if (this.#closing) await this.#closing
    if (this.#status === 'open') return
    this.#opening ??= this.#doOpen().finally(() => {
      this.#opening = undefined
    })
    return raced(this.#opening, options.signal)
  }

  async #doOpen(): Promise<void> {
    this.#status = 'opening'
    const client = new Etcd3(this.#clientOptions)
    try {
      const deadline = Date.now() + this.#connectTimeoutMs
      const [key, end] = this.#bounds({})
      await client.kv.range({ key, range_end: end ?? ZERO, count_only: true, limit: 1 }, { deadline })
      this.#client = client
      this.#status = 'open'
    } catch (err) {
      client.close()
      this.#status = 'closed'
      throw toIoError(err, `connecting to etcd at ${String(this.#clientOptions.hosts)}`)
    }
  }

  /** Closes the client (waiting for an `open()` in progress). Idempotent. */
  async close(): Promise<void> {
    if (this.#opening) await this.#opening.catch(() => undefined)
    if (this.#closing) return this.#closing
    if (this.#status === 'closed') return
    this.#status = 'closing'
    this.#closing = (async () => {
      try {
        this.#client?.close()
      } finally {
        this.#client = undefined
        this.#status = 'closed'
        this.#closing = undefined
      }
    })()
    return this.#closing
  }

  #ensureOpen(): Etcd3 {
    if (this.#status !== 'open' || this.#client === undefined) {
      throw new SnapshotError('NOT_OPEN', `the etcd meta store is not open${this.#status === 'closed' ? '; call open() first' : ` (${this.#status})`}`)
    }
    return this.#client
  }

  #key(key: string): Buffer {
    return Buffer.concat([this.#prefix, Buffer.from(key, 'utf8')])
  }

  #mapError(err: unknown, what: string, signal?: AbortSignal): SnapshotError {
    if (err instanceof SnapshotError) return err
    const text = message(err)
    if (/too many operations in txn request/.test(text)) {
      return new SnapshotError('INVALID_ARGUMENT', `${what}: etcd rejected the transaction as larger than its --max-txn-ops setting; lower maxTxnOps to match it`, { cause: err })
    }
    if (/request is too large/.test(text)) {
      return new SnapshotError('INVALID_ARGUMENT', `${what}: the request exceeds etcd's --max-request-bytes setting`, { cause: err })
    }
    if (this.#status === 'closed' && !signal?.aborted) {
      return new SnapshotError('NOT_OPEN', `the etcd meta store was closed during ${what}`, { cause: err })
    }
    return toIoError(err, what, signal)
  }

  /** Reads one key; `undefined` when absent. */
  async get(key: string, options: AbortOptions = {}): Promise<string | undefined> {
    const { signal } = options
    throwIfAborted(signal)
    const client = this.#ensureOpen()
    try {
      const res = await raced(client.kv.range({ key: this.#key(key) }), signal)
      return res.kvs.length === 0 ? undefined : res.kvs[0].value.toString('utf8')
    } catch (err) {
      throw this.#mapError(err, `etcd get ${JSON.stringify(key)}`, signal)
    }
  }

  /**
   * Applies all operations in one etcd transaction whose compares are the expectations:
   * a value expectation compares the value, an absent one `createRevision == 0`. When a
   * compare fails, rejects with the conflict error and writes nothing. The signal is
   * checked before the transaction is sent; once sent, the batch reports its real outcome.
   */
  async batch(operations: readonly MetaOperation[], options: MetaBatchOptions = {}): Promise<void> {
    const { signal, expect = [] } = options
    throwIfAborted(signal)
    const client = this.#ensureOpen()
    assertMetaOperations(operations)
    assertMetaExpectations(options.expect)
    // etcd counts a transaction's compares and its writes separately, each against --max-txn-ops.
    const size = Math.max(operations.length, expect.length)
    if (size > this.#maxTxnOps) {
      throw new SnapshotError(
        'INVALID_ARGUMENT',
        `a batch of ${operations.length} operations and ${expect.length} expectations exceeds maxTxnOps (${this.#maxTxnOps}): ` +
          `etcd caps the compares and the writes of one transaction at its --max-txn-ops setting (default 128)`,
        { details: { operations: operations.length, expectations: expect.length, maxTxnOps: this.#maxTxnOps } },
      )
    }
    if (operations.length + expect.length === 0) return
    // etcd rejects a transaction that touches one key twice: keep the last operation per key.
    const last = new Map<string, MetaOperation>()
    for (const op of operations) last.set(op.key, op)
    const success: IRequestOp[] = [...last.values()].map((op) =>
      op.type === 'put'
        ? { request_put: { key: this.#key(op.key), value: Buffer.from(op.value, 'utf8') } }
        : { request_delete_range: { key: this.#key(op.key) } },
    )
    const compare: ICompare[] = expect.map((e) =>
      e.value === undefined
        ? { key: this.#key(e.key), target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }
        : { key: this.#key(e.key), target: CompareTarget.Value, result: CompareResult.Equal, value: Buffer.from(e.value, 'utf8') },
    )
    throwIfAborted(signal)
    let succeeded: boolean
    try {
      succeeded = (await client.kv.txn({ compare, success, failure: [] })).succeeded
    } catch (err) {
      throw this.#mapError(err, `etcd batch of ${operations.length} operations`)
    }
    if (!succeeded) throw await this.#conflict(client, expect, signal)
  }

  /** Finds which expectations failed, for the conflict error (best effort). */
  async #conflict(client: Etcd3, expect: readonly { key: string; value: string | undefined }[], signal?: AbortSignal): Promise<SnapshotError> {
    try {
      const keys: string[] = []
      for (const e of expect) {
        const res = await raced(client.kv.range({ key: this.#key(e.key) }), signal)
        const value = res.kvs.length === 0 ? undefined : res.kvs[0].value.toString('utf8')
        if (value !== e.value) keys.push(e.key)
      }
      return metaConflictError(keys.length > 0 ? keys : expect.map((e) => e.key))
    } catch {
      return metaConflictError(expect.map((e) => e.key))
    }
  }

  /**
   * Yields `[key, value]` pairs in key order within `range`, fetching `pageSize` keys per
   * request at the revision of the first page. Checks `signal` between entries.
   */
  async *iterate(range: MetaRange = {}, options: AbortOptions = {}): AsyncGenerator<[string, string]> {
    const { signal } = options
    throwIfAborted(signal)
    const client = this.#ensureOpen()
    let [start, end] = this.#bounds(range)
    const reverse = range.reverse === true
    let remaining = range.limit === undefined ? Infinity : Math.max(0, Math.floor(range.limit))
    let revision: string | undefined
    const skip = this.#prefix.length
    try {
      while (remaining > 0 && (end === undefined || Buffer.compare(start, end) < 0)) {
        throwIfAborted(signal)
        const limit = Math.min(this.#pageSize, remaining)
        const res = await raced(
          client.kv.range({
            key: start,
            range_end: end ?? ZERO,
            limit,
            sort_target: SortTarget.Key,
            sort_order: reverse ? SortOrder.Descend : SortOrder.None,
            ...(revision === undefined ? {} : { revision }),
          }),
          signal,
        )
        revision ??= res.header.revision
        for (const kv of res.kvs) {
          throwIfAborted(signal)
          yield [kv.key.subarray(skip).toString('utf8'), kv.value.toString('utf8')]
        }
        remaining -= res.kvs.length
        if (!res.more || res.kvs.length === 0) return
        const lastKey = res.kvs[res.kvs.length - 1].key
        if (reverse) end = lastKey
        else start = Buffer.concat([lastKey, ZERO])
      }
    } catch (err) {
      throw this.#mapError(err, 'etcd iterate', signal)
    }
  }

  /**
   * An etcd lease-based election among the managers on this cluster and prefix (keys
   * under `${prefix}l/`), on this store's client: `SnapshotManager` uses
   * `createLeadership('loops')` to pick the one manager that runs the background loops.
   * Campaign only while the store is open (the manager opens it first).
   *
   * @example
   * const meta = new EtcdMetaStore({ hosts })
   * const manager = new SnapshotManager({ meta, objects, leadership: meta.createLeadership('loops', { ttlSeconds: 5 }) })
   */
  createLeadership(name: string, options: CreateLeadershipOptions = {}): EtcdLeadership {
    return new EtcdLeadership({
      client: () => this.#ensureOpen(),
      prefix: `${this.prefix}l/`,
      name,
      ttlSeconds: options.ttlSeconds,
    })
  }

  /** The `[start, end)` byte range of `range` under the prefix; `end` undefined means unbounded. Both bounds of a side apply. */
  #bounds(range: MetaRange): [Buffer, Buffer | undefined] {
    const max = (a: Buffer, b: Buffer) => (Buffer.compare(a, b) >= 0 ? a : b)
    const min = (a: Buffer | undefined, b: Buffer) => (a === undefined || Buffer.compare(a, b) > 0 ? b : a)
    // etcd needs a non-empty start key; \0 is the smallest.
    let start = this.#prefix.length === 0 ? ZERO : this.#prefix
    if (range.gte !== undefined) start = max(start, this.#key(range.gte))
    if (range.gt !== undefined) start = max(start, Buffer.concat([this.#key(range.gt), ZERO]))
    let end = bytesAfterPrefix(this.#prefix)
    if (range.lt !== undefined) end = min(end, this.#key(range.lt))
    if (range.lte !== undefined) end = min(end, Buffer.concat([this.#key(range.lte), ZERO]))
    return [start, end]
  }
}
