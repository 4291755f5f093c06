import { MAX_BATCH_BYTES, MAX_BATCH_EXPECTATIONS, MAX_BATCH_OPS, type MetaBatchOptions, type MetaOperation, type MetaStore } from '../../src/meta/meta-store.js'

/**
 * SPEC section 11: no batch vecsnap issues carries more than 64 operations, 64
 * expectations or 256 KiB of keys and values. `assertWithinLimits` throws (a plain
 * `Error`, which no vecsnap code handles, so the test fails) when a batch breaks a limit.
 */

let suspended = 0

/** Runs `fn` with the limits off: for tests of an adapter itself, which send large batches on purpose. */
export async function withoutBatchLimits<T>(fn: () => Promise<T>): Promise<T> {
  suspended++
  try {
    return await fn()
  } finally {
    suspended--
  }
}

/**
 * Turns the limits off for the rest of the test file (each file runs in its own module
 * graph): for the adapter conformance tests, which send large batches to the adapter on purpose.
 */
export function suspendBatchLimitsInThisFile(): void {
  suspended++
}

/** Bytes of keys and values a batch carries (UTF-8). */
export function batchBytes(operations: readonly MetaOperation[], options: MetaBatchOptions = {}): number {
  let bytes = 0
  for (const op of operations) bytes += Buffer.byteLength(op.key) + (op.type === 'put' ? Buffer.byteLength(op.value) : 0)
  for (const e of options.expect ?? []) bytes += Buffer.byteLength(e.key) + (e.value === undefined ? 0 : Buffer.byteLength(e.value))
  return bytes
}

/** Throws when the batch breaks a limit of SPEC section 11. */
export function assertWithinLimits(operations: readonly MetaOperation[], options: MetaBatchOptions = {}): void {
  if (suspended > 0) return
  const expectations = options.expect?.length ?? 0
  const bytes = batchBytes(operations, options)
  if (operations.length > MAX_BATCH_OPS || expectations > MAX_BATCH_EXPECTATIONS || bytes > MAX_BATCH_BYTES) {
    const sample = [...new Set(operations.map((op) => op.key.split('/').slice(0, 2).join('/')))].slice(0, 5).join(', ')
    throw new Error(`batch over the SPEC 11 limits: ${operations.length} operations, ${expectations} expectations, ${bytes} bytes (keys like ${sample})`)
  }
}

/** Makes `store` reject (with a plain Error) any batch over the limits. Returns the store. */
export function limitBatches<T extends MetaStore>(store: T): T {
  const batch = store.batch.bind(store)
  store.batch = async (operations, options) => {
    assertWithinLimits(operations, options)
    return batch(operations, options)
  }
  return store
}

/** Makes every instance of `cls` (a MetaStore class) reject batches over the limits. */
export function limitBatchesOf(cls: { prototype: MetaStore }): void {
  const batch = cls.prototype.batch
  cls.prototype.batch = async function (this: MetaStore, operations: readonly MetaOperation[], options?: MetaBatchOptions) {
    assertWithinLimits(operations, options)
    return batch.call(this, operations, options)
  }
}
