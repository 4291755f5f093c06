import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CopyOptions, ObjectInfo, ObjectStore, PutOptions, PutStreamOptions } from '../../src/storage/object-store.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import type { AbortOptions } from '../../src/types.js'
import type { MetaStore } from '../../src/meta/meta-store.js'

/**
 * An ObjectStore wrapper that records every write (put, putStream, copy target) by key,
 * and can hold writes at a gate.
 */
export class CountingStore implements ObjectStore {
  readonly inner: ObjectStore
  /** Keys written, in order (one per completed write). */
  readonly writes: string[] = []
  /** Copies done with `copy`: `[from, to]`. */
  readonly copies: [string, string][] = []
  /** When set, each write waits for it first. */
  gate: Promise<void> | undefined
  /** Called when a write reaches the gate. */
  onGate: (() => void) | undefined

  constructor(inner: ObjectStore) {
    this.inner = inner
  }

  get capabilities() {
    return this.inner.capabilities
  }

  async #wait(): Promise<void> {
    if (this.gate === undefined) return
    this.onGate?.()
    await this.gate
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    await this.#wait()
    const info = await this.inner.put(key, body, options)
    this.writes.push(key)
    return info
  }

  get(key: string, options?: AbortOptions): Promise<Uint8Array | undefined> {
    return this.inner.get(key, options)
  }

  head(key: string, options?: AbortOptions): Promise<ObjectInfo | undefined> {
    return this.inner.head(key, options)
  }

  list(prefix: string, options?: AbortOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, options)
  }

  async copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo> {
    await this.#wait()
    const info = await this.inner.copy(from, to, options)
    this.copies.push([from, to])
    this.writes.push(to)
    return info
  }

  delete(keys: readonly string[], options?: AbortOptions): Promise<void> {
    return this.inner.delete(keys, options)
  }

  async getStream(key: string, options?: AbortOptions): Promise<AsyncIterable<Uint8Array> | undefined> {
    return this.inner.getStream === undefined ? undefined : this.inner.getStream(key, options)
  }

  async putStream(key: string, body: AsyncIterable<Uint8Array>, options?: PutStreamOptions): Promise<ObjectInfo> {
    await this.#wait()
    const info = this.inner.putStream === undefined ? await this.inner.put(key, Buffer.concat(await collect(body)), options) : await this.inner.putStream(key, body, options)
    this.writes.push(key)
    return info
  }

  /** Writes under `prefix`. */
  writesUnder(prefix: string): string[] {
    return this.writes.filter((k) => k.startsWith(prefix))
  }
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const c of body) out.push(c)
  return out
}

/** A temporary directory with a filesystem store (and, on demand, a LevelDB) in it. */
export interface TempStores {
  dir: string
  objects: FsObjectStore
  meta: MetaStore
  dispose(): Promise<void>
}

/** A fresh directory store and a memory (or LevelDB) MetaStore. */
export async function tempStores(kind: 'memory' | 'level' = 'memory'): Promise<TempStores> {
  const dir = await mkdtemp(join(tmpdir(), 'vecsnap-repo-'))
  return {
    dir,
    objects: new FsObjectStore({ root: join(dir, 'objects') }),
    meta: kind === 'memory' ? new MemoryMetaStore() : new LevelMetaStore({ location: join(dir, 'meta') }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  }
}

/** The SHA-256 of every segment file of the collection's flushed segments, sorted (what the collection holds, whatever its keys). */
export async function collectionContent(manager: SnapshotManager, objects: ObjectStore, collection: string): Promise<string[]> {
  const out: string[] = []
  for (const s of await manager.catalog.listSegments(collection, { states: ['flushed'] })) {
    for (const { file } of segmentFiles(s)) {
      const bytes = await objects.get(file.key)
      out.push(`${file.size}:${bytes === undefined ? 'missing' : createHash('sha256').update(bytes).digest('hex')}`)
    }
  }
  return out.sort()
}

/** Segment and index files of the collection's flushed segments, each once. */
export async function fileCount(manager: SnapshotManager, collection: string): Promise<number> {
  const keys = new Set<string>()
  for (const s of await manager.catalog.listSegments(collection, { states: ['flushed'] })) for (const { file } of segmentFiles(s)) keys.add(file.key)
  return keys.size
}

/** SHA-256 (hex) of chunks in order. */
export function sha256Of(...chunks: Uint8Array[]): string {
  const hash = createHash('sha256')
  for (const c of chunks) hash.update(c)
  return hash.digest('hex')
}

/** Every chunk of a stream, appended to `into`. */
export async function drain(chunks: AsyncIterable<Uint8Array>, into: Uint8Array[] = []): Promise<Uint8Array[]> {
  for await (const c of chunks) into.push(c)
  return into
}
