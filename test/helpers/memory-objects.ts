import type { ObjectInfo, ObjectStore, ObjectStoreCapabilities } from '../../src/storage/object-store.js'

/**
 * An ObjectStore in a Map, for tests and benches that measure the MetaStore side of an operation
 * (operation counts) without the disk. Counts reads by kind of key.
 */
export class MemoryObjects implements ObjectStore {
  readonly capabilities: ObjectStoreCapabilities = Object.freeze({ serverSideCopy: false, hardLink: false, multipartCopy: false })
  readonly #objects = new Map<string, { bytes: Uint8Array; lastModified: number }>()
  /** `get` calls by what they read: `manifest` (`.avro`), `list` (`.txt`), `other`. */
  readonly reads = { manifest: 0, list: 0, other: 0 }

  async put(key: string, body: Uint8Array): Promise<ObjectInfo> {
    const lastModified = Date.now()
    this.#objects.set(key, { bytes: body, lastModified })
    return { key, size: body.byteLength, lastModified }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.reads[key.endsWith('.avro') ? 'manifest' : key.endsWith('.txt') ? 'list' : 'other']++
    return this.#objects.get(key)?.bytes
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const o = this.#objects.get(key)
    return o === undefined ? undefined : { key, size: o.bytes.byteLength, lastModified: o.lastModified }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys = [...this.#objects.keys()].filter((k) => k.startsWith(prefix)).sort()
    for (const key of keys) {
      const o = this.#objects.get(key)
      if (o !== undefined) yield { key, size: o.bytes.byteLength, lastModified: o.lastModified }
    }
  }

  async copy(from: string, to: string): Promise<ObjectInfo> {
    const o = this.#objects.get(from)
    if (o === undefined) throw new Error(`no object ${from}`)
    return this.put(to, o.bytes)
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const k of keys) this.#objects.delete(k)
  }
}
