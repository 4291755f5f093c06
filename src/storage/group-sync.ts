/**
 * Group commit for `fsync`s of one path (a directory): a caller that asks while a sync of
 * the path is under way waits for the next one, which starts when the current one ends
 * and serves everyone who asked in the meantime. Each caller's sync starts after it asked,
 * so it covers what the caller did before asking; concurrent writes into one directory (a
 * restore links hundreds of files into a segment's directory) share the directory's syncs.
 * @internal
 */
export class GroupSync {
  readonly #sync: (path: string) => Promise<void>
  readonly #entries = new Map<string, { running: Promise<void>; queued: Promise<void> | undefined }>()

  /** @param sync The sync of one path; called through this function, at most once at a time per path. */
  constructor(sync: (path: string) => Promise<void>) {
    this.#sync = sync
  }

  /** Resolves once a sync of `path` that started after this call has completed. */
  sync(path: string): Promise<void> {
    const entry = this.#entries.get(path)
    if (entry === undefined) return this.#start(path)
    entry.queued ??= entry.running.then(
      () => this.#start(path),
      () => this.#start(path),
    )
    return entry.queued
  }

  #start(path: string): Promise<void> {
    const entry: { running: Promise<void>; queued: Promise<void> | undefined } = { running: Promise.resolve(), queued: undefined }
    entry.running = this.#sync(path).finally(() => {
      if (this.#entries.get(path) === entry) this.#entries.delete(path)
    })
    this.#entries.set(path, entry)
    return entry.running
  }
}
