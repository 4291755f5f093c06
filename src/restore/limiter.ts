/**
 * A counting semaphore: at most `concurrency` functions run at once, the rest wait in
 * FIFO order. Lighter than a p-queue for the one job it has here (a slot per object
 * copy, shared by every copy task of the process).
 * @internal
 */
export class Limiter {
  /** Functions allowed to run at once. */
  readonly concurrency: number
  #running = 0
  readonly #waiting: (() => void)[] = []
  #head = 0

  constructor(concurrency: number) {
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new TypeError(`Expected \`concurrency\` to be ≥ 1, got \`${concurrency}\``)
    this.concurrency = concurrency
  }

  /** Runs `fn` once a slot is free; settles as `fn` does. */
  async add<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.concurrency) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    else this.#running++
    try {
      return await fn()
    } finally {
      this.#release()
    }
  }

  #release(): void {
    if (this.#head < this.#waiting.length) {
      // The slot passes straight to the next waiter.
      const next = this.#waiting[this.#head++]
      if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
        this.#waiting.splice(0, this.#head)
        this.#head = 0
      }
      next()
    } else {
      this.#running--
    }
  }
}
