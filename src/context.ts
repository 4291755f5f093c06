import type { TypedEmitter, SnapshotManagerEvents } from './events.js'
import type { Catalog } from './meta/catalog.js'
import type { MetaStore } from './meta/meta-store.js'
import type { Transactor } from './meta/transaction.js'
import type { ResolvedOptions } from './options.js'
import type { ObjectStore } from './storage/object-store.js'

/**
 * What the manager hands each of its parts (snapshot store, restore, GC). Parts talk to
 * each other only through the functions the manager passes them, never through internals.
 * @internal
 */
export interface ManagerContext {
  /** The guarded MetaStore. */
  readonly meta: MetaStore
  /** The guarded ObjectStore. */
  readonly objects: ObjectStore
  /** Serializes every metadata mutation (catalog, pins, jobs, GC) and commits it atomically. */
  readonly transactor: Transactor
  readonly catalog: Catalog
  readonly options: ResolvedOptions
  readonly events: TypedEmitter<SnapshotManagerEvents>
  /**
   * This manager's ID among every process sharing the MetaStore (its leadership
   * candidate ID). Written as the `owner` of the snapshots it is creating, so that the
   * loop runner's recovery leaves them alone while this manager is alive.
   */
  readonly instanceId?: string
  now(): number
}
