import type { AbortOptions } from '../types.js'

/** What the store knows about one object. */
export interface ObjectInfo {
  /** The object's key (relative, '/'-separated). */
  key: string
  /** Size in bytes. */
  size: number
  /**
   * Last modification time, epoch milliseconds: never earlier than when the object appeared
   * under its key (GC's orphan grace runs from it; a hard link reports its own time, not its
   * source's).
   */
  lastModified: number
}

/** What an adapter can do. */
export interface ObjectStoreCapabilities {
  /** `copy` runs inside the backend; no data bytes pass through the process (S3 CopyObject). */
  readonly serverSideCopy: boolean
  /** `copy` can hard-link (a filesystem on one device). */
  readonly hardLink: boolean
  /** `copy` handles objects above 5 GiB with multipart copy (S3 UploadPartCopy). */
  readonly multipartCopy: boolean
}

/** How `copy` may copy. `auto`: link or server-side where possible, else bytes; `link`: prefer a hard link (falls back to bytes across devices); `copy`: always a byte copy (filesystem). */
export type CopyMode = 'auto' | 'link' | 'copy'

/** Options of {@link ObjectStore.copy}. */
export interface CopyOptions extends AbortOptions {
  /** Default `auto`. S3 copies are always server-side. */
  mode?: CopyMode
  /**
   * The source's size in bytes, when the caller knows it (a restore knows it from the
   * snapshot's manifest). A store may use it to skip a metadata request: `S3ObjectStore`
   * then sends CopyObject without a HeadObject first, for hints up to its multipart
   * threshold; `FsObjectStore` does not `stat` a new hard link (a link is the source's
   * own file). A hint is not checked against the source: a store that skips the request
   * reports this value as the result's `size` (and the time of the copy as its
   * `lastModified`); stores that read the size anyway (`FsObjectStore` for byte copies)
   * report what they copied. A wrong hint never makes a copy fail or copy less: it only
   * makes that `size` wrong.
   *
   * Must be a non-negative safe integer; anything else throws a `TypeError`.
   */
  sizeBytes?: number
}

/** Options of {@link ObjectStore.put}. */
export interface PutOptions extends AbortOptions {
  /**
   * The caller promises that the key is new and that nothing reads it before `put`
   * resolves (a manifest of a snapshot that has not committed yet). A store may then
   * write the object in place instead of atomically (`FsObjectStore` skips its temporary
   * file and rename), so a crash can leave a partial object under the key: the caller must
   * be able to find and delete it (snapshot recovery deletes a pending snapshot's
   * objects). An existing key is still replaced atomically. @default false
   */
  fresh?: boolean
}

/** Options of {@link ObjectStore.putStream}. */
export interface PutStreamOptions extends PutOptions {
  /**
   * The body's length in bytes, when the caller knows it (an export knows it from the
   * snapshot's manifest). A store may use it to choose how to upload (`S3ObjectStore`: one
   * PutObject up to its multipart threshold, a multipart upload above). It is checked: a
   * body of another length rejects with `IO_ERROR` (`details.sizeBytes`,
   * `details.actualBytes`) and nothing is written.
   *
   * Must be a non-negative safe integer; anything else throws a `TypeError`.
   */
  sizeBytes?: number
}

/**
 * The object port: immutable blobs under relative keys.
 *
 * Keys are non-empty, relative, '/'-separated, with no empty, `.` or `..` segment, no
 * backslash and no NUL; anything else rejects with `INVALID_ARGUMENT`.
 *
 * Adapters: {@link FsObjectStore} (a directory), `S3ObjectStore` (vecsnap/s3). Write your
 * own and check it with `objectStoreSuite` (see README, "Storage adapters").
 *
 * - `get`/`head` of an absent key resolve `undefined`.
 * - `put` is atomic: readers see the old object, or the whole new one.
 * - `list(prefix)` yields every object whose key starts with `prefix`, ordered by key,
 *   paging through the backend as needed.
 * - `copy` rejects with `NOT_FOUND` when the source is absent; it overwrites the target.
 * - `delete` of absent keys succeeds (idempotent).
 * - A fired `signal` rejects with `ABORTED`; backend failures reject with `IO_ERROR`.
 *
 * Streaming (`getStream`, `putStream`) is optional. Objects can be many GiB (segment and
 * index files), and export/import copy them between stores in chunks through these two
 * methods. A store without them still works everywhere: the core then falls back to `get`
 * and `put` (see `readObjectStream`/`writeObjectStream`), which hold the whole object in
 * memory, so implement both for any backend that holds large objects.
 * - `getStream` of an absent key resolves `undefined`; otherwise an iterable of the
 *   object's bytes in order, in chunks of any size. The caller consumes it to the end or
 *   stops early (`break`, `return()`), which releases what it holds (a file descriptor, a
 *   socket). A failure or a fired `signal` while iterating throws `IO_ERROR`/`ABORTED`.
 * - `putStream` is atomic like `put`: readers see the old object or the whole new one;
 *   when the body throws, the `signal` fires or the backend fails, nothing is left under
 *   the key (nor any temporary file or incomplete multipart upload), and it rejects (with
 *   the body's own `SnapshotError`, else `ABORTED` or `IO_ERROR`). It resolves what was
 *   written (`size` is the number of bytes the body yielded).
 */
export interface ObjectStore {
  /** What the store can do beyond the required methods. */
  readonly capabilities: ObjectStoreCapabilities
  /** Writes `body` at `key`, replacing an existing object atomically; resolves what was written. */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<ObjectInfo>
  /** The object's bytes, or `undefined` when it is absent (never an error). */
  get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined>
  /** The object's size and modification time, or `undefined` when it is absent. */
  head(key: string, options?: AbortOptions): Promise<ObjectInfo | undefined>
  /** Every object whose key starts with `prefix`, ordered by key. */
  list(prefix: string, options?: AbortOptions): AsyncIterable<ObjectInfo>
  /** Copies `fromKey` to `toKey` (a hard link or a server-side copy where possible); `NOT_FOUND` when the source is absent. */
  copy(fromKey: string, toKey: string, options?: CopyOptions): Promise<ObjectInfo>
  /** Deletes the keys; absent keys are no error. */
  delete(keys: readonly string[], options?: AbortOptions): Promise<void>
  /**
   * Optional: the object's bytes as a stream (chunks in order; a Node.js `Readable` is
   * one), or `undefined` when it is absent. Without it the core reads with `get`, holding
   * the object in memory.
   */
  getStream?(key: string, options?: AbortOptions): Promise<AsyncIterable<Uint8Array> | undefined>
  /**
   * Optional: writes the streamed `body` at `key`, replacing an existing object atomically;
   * resolves what was written. A store may keep the chunks by reference until they are
   * written: the body must not modify a chunk after yielding it (Node.js streams never do).
   * Without it the core collects the body and calls `put`, holding the object in memory.
   */
  putStream?(key: string, body: AsyncIterable<Uint8Array>, options?: PutStreamOptions): Promise<ObjectInfo>
  /** Optional: release resources (sockets, handles). */
  close?(): Promise<void>
  /**
   * Optional: remove what interrupted writes left behind (temporary files older than a
   * grace); resolves how many were removed. The GC loop calls it once when it starts (a
   * listing never writes).
   */
  removeStaleTempFiles?(options?: AbortOptions): Promise<number>
}
