import { abortError } from '../errors.js'

/** Options of {@link Mutex.run}. */
export interface MutexRunOptions {
  /** Stop waiting for the lock when it fires (rejects with `ABORTED`); a holder already running is not interrupted. */
  signal?: AbortSignal
}

interface Waiter {
  grant(): void
}

/** A FIFO async mutex: `run(fn)` runs `fn` once every earlier holder has finished. */
export class Mutex {
  #locked = false
  readonly #waiters: Waiter[] = []

  /** Runs `fn` holding the lock. A waiter whose `signal` fires leaves the queue and rejects `ABORTED`. */
  async run<T>(fn: () => Promise<T>, options: MutexRunOptions = {}): Promise<T> {
    await this.#acquire(options.signal)
    try {
      return await fn()
    } finally {
      this.#release()
    }
  }

  #acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted === true) return Promise.reject(abortError(signal))
    if (!this.#locked) {
      this.#locked = true
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter)
        if (i !== -1) this.#waiters.splice(i, 1)
        reject(abortError(signal as AbortSignal))
      }
      const waiter: Waiter = {
        grant() {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.push(waiter)
    })
  }

  #release(): void {
    const next = this.#waiters.shift()
    if (next === undefined) this.#locked = false
    else next.grant()
  }
}
