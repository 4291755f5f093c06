import { MemoryLevel } from 'memory-level'
import { AbstractLevelMetaStore, type AnyAbstractLevel } from './abstract-level-meta-store.js'

/**
 * The MetaStore in memory (memory-level), for tests and ephemeral use. Data survives
 * `close()` and `open()` of the same instance, and is lost with it.
 *
 * @example
 * const manager = new SnapshotManager({ meta: new MemoryMetaStore(), objects })
 */
export class MemoryMetaStore extends AbstractLevelMetaStore {
  /** An empty store. */
  constructor() {
    // Nothing to sync.
    super(new MemoryLevel<string, string>({ keyEncoding: 'utf8', valueEncoding: 'utf8' }), { sync: false })
  }

  protected createDb(): AnyAbstractLevel {
    // Never called: the database is created in the constructor.
    return new MemoryLevel<string, string>({ keyEncoding: 'utf8', valueEncoding: 'utf8' })
  }

  protected get description(): string {
    return 'the memory meta store'
  }
}
