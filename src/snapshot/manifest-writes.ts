import { abortError } from '../errors.js'
import type { ObjectStore } from '../storage/object-store.js'
import { encodeManifest, type EncodedManifest, type ManifestRecord } from './manifest-codec.js'

/** A manifest a new snapshot writes itself: a record to encode, or bytes the planner has already. */
export type ManifestWrite = {
  /** Position in the record's manifest lists. */
  index: number
  key: string
} & ({ manifest: ManifestRecord; encoded?: undefined } | { encoded: EncodedManifest; manifest?: undefined })

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
  /** Size and hash of each written manifest, by `index`. */
  readonly sizes = new Map<number, number>()
  readonly hashes = new Map<number, string>()

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

  async #write(w: ManifestWrite): Promise<void> {
    if (this.#signal?.aborted === true) throw abortError(this.#signal)
    const encoded = w.encoded ?? encodeManifest(w.manifest)
    this.sizes.set(w.index, encoded.bytes.byteLength)
    this.hashes.set(w.index, encoded.hash)
    await this.#objects.put(w.key, encoded.bytes, { signal: this.#signal, fresh: true })
  }
}
