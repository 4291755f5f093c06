import { abortError } from '../errors.js'
import type { ObjectStore } from '../storage/object-store.js'
import { assembleManifest, type EncodedManifest, type ManifestBody } from '../format/manifest-codec.js'

/** A manifest's content: a stored body to assemble, or bytes encoded already. */
export type ManifestSource = { body: ManifestBody; encoded?: undefined } | { encoded: EncodedManifest; body?: undefined }

/** A manifest a new snapshot writes itself. */
export type ManifestWrite = {
  key: string
  /** Content hash the snapshot's list records for it. */
  hash: string
} & ManifestSource

/**
 * The manifest writes of one create, `concurrency` at a time, fed while the create is
 * still planning: encoding (on the main thread) and writing (on the I/O pool) overlap the
 * planner's own reads. Writes are `fresh` puts: every key is under the new snapshot's own
 * manifest directory, which nothing reads before the snapshot commits.
 * @internal
 */
export class ManifestWrites {
  readonly #objects: ObjectStore
  readonly #concurrency: number
  readonly #signal: AbortSignal | undefined
  readonly #queue: ManifestWrite[] = []
  #next = 0
  #active = 0
  #stopped = false
  #failure: { err: unknown } | undefined
  /** Callers of `finish()` / `stop()` waiting for {@link idle}. */
  readonly #waiters: (() => void)[] = []
  /** The last write started per key: a key queued again (a rescan recaptured it) waits for it. */
  readonly #tails = new Map<string, Promise<void>>()

  constructor(objects: ObjectStore, concurrency: number, signal?: AbortSignal) {
    this.#objects = objects
    this.#concurrency = concurrency
    this.#signal = signal
  }

  /** Queues a write; it starts as soon as a slot is free. Ignored once stopped. */
  add(write: ManifestWrite): void {
    if (this.#stopped) return
    this.#queue.push(write)
    this.#pump()
  }

  /** Resolves once every queued write landed; rejects with the first failure. No `add` after this. */
  async finish(): Promise<void> {
    await this.#idle()
    if (this.#failure !== undefined) throw this.#failure.err
  }

  /** Resolves once nothing is in flight and nothing queued waits (a failure is kept for `finish()`). */
  async settled(): Promise<void> {
    await this.#idle()
  }

  /** Starts no more writes and resolves once none is in flight (before the cleanup deletes what landed). */
  async stop(): Promise<void> {
    this.#stopped = true
    await this.#idle()
  }

  /** Nothing in flight, and nothing more will start. */
  get #isIdle(): boolean {
    return this.#active === 0 && (this.#stopped || this.#failure !== undefined || this.#next >= this.#queue.length)
  }

  #idle(): Promise<void> {
    if (this.#isIdle) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  #pump(): void {
    while (this.#active < this.#concurrency && this.#next < this.#queue.length && !this.#stopped && this.#failure === undefined) {
      const write = this.#queue[this.#next]
      // Drop the reference: the record stays only as long as its write.
      this.#queue[this.#next++] = undefined as unknown as ManifestWrite
      this.#active++
      this.#write(write).then(
        () => this.#done(),
        (err: unknown) => {
          this.#failure ??= { err: this.#signal?.aborted === true ? abortError(this.#signal) : err }
          this.#done()
        },
      )
    }
  }

  #done(): void {
    this.#active--
    this.#pump()
    if (this.#isIdle) for (const wake of this.#waiters.splice(0)) wake()
  }

  /**
   * Writes one manifest. Writes of one key run in the order they were queued, each after
   * the previous one settled: a rescan queues a key again with new content (a deltalog
   * added meanwhile), and two puts of one key in flight together may land in either order
   * (last-arriving on S3; on a filesystem the create-if-absent one can lose to the
   * fallback), which would leave content the list's hash does not name.
   */
  #write(w: ManifestWrite): Promise<void> {
    const before = this.#tails.get(w.key)
    const mine = (async () => {
      if (before !== undefined) await before.catch(() => undefined)
      if (this.#signal?.aborted === true) throw abortError(this.#signal)
      const bytes = w.encoded !== undefined ? w.encoded.bytes : assembleManifest(w.body).bytes
      await this.#objects.put(w.key, bytes, { signal: this.#signal, fresh: true })
    })()
    this.#tails.set(w.key, mine)
    const forget = (): void => {
      if (this.#tails.get(w.key) === mine) this.#tails.delete(w.key)
    }
    mine.then(forget, forget)
    return mine
  }
}
