import type {
  MetaBatchOptions,
  MetaOperation,
  MetaRange,
  MetaStore,
  MetaStoreCapabilities,
  StoreStatus,
} from '../../src/meta/meta-store.js'
import type { AbortOptions } from '../../src/types.js'

/**
 * A MetaStore that passes every call through to `inner`. Tests extend it and override
 * only the calls they count, slow down, gate or fail.
 */
export class DelegatingMetaStore implements MetaStore {
  constructor(readonly inner: MetaStore) {}

  get capabilities(): MetaStoreCapabilities {
    return this.inner.capabilities
  }

  get status(): StoreStatus {
    return this.inner.status
  }

  open(o?: AbortOptions): Promise<void> {
    return this.inner.open(o)
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  get(key: string, o?: AbortOptions): Promise<string | undefined> {
    return this.inner.get(key, o)
  }

  batch(ops: readonly MetaOperation[], o?: MetaBatchOptions): Promise<void> {
    return this.inner.batch(ops, o)
  }

  iterate(range?: MetaRange, o?: AbortOptions): AsyncIterable<[string, string]> {
    return this.inner.iterate(range, o)
  }
}
