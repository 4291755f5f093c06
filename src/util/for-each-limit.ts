import { abortError } from '../errors.js'

/**
 * Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first
 * failure (remaining items are not started). Checks `signal` between items.
 *
 * The one bounded-concurrency helper for work over a known list (point reads, heads,
 * manifest reads, verification). Loops that feed work as it is produced use p-queue
 * (the restore inspector) or their own queue where a measured hot path needs it
 * (`ManifestWrites`: writes start while a create is still planning); `prefetch` keeps
 * results in order; the restore's `Limiter` shares copy slots across tasks.
 */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0
  let failed = false
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      if (signal?.aborted) throw abortError(signal)
      const i = next++
      try {
        await fn(items[i], i)
      } catch (err) {
        failed = true
        throw err
      }
    }
  }
  const workers: Promise<void>[] = []
  for (let i = 0; i < Math.min(limit, items.length); i++) workers.push(worker())
  const results = await Promise.allSettled(workers)
  for (const r of results) if (r.status === 'rejected') throw r.reason
}
