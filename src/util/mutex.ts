/** A FIFO async mutex: `run(fn)` runs `fn` once every earlier holder has finished. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve()

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn, fn)
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    )
    return result
  }
}
