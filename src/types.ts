/** Per-call options accepted by every async method. */
export interface AbortOptions {
  /** Cancels the call; it rejects with `ABORTED`. */
  signal?: AbortSignal
}
