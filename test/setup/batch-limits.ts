/**
 * Runs under the whole suite (vitest `setupFiles`): every LevelMetaStore, MemoryMetaStore
 * and MapMetaStore rejects a batch over the SPEC section 11 limits, so any code path that
 * would not fit an etcd started with its default limits fails its test.
 */
import { AbstractLevelMetaStore } from '../../src/meta/abstract-level-meta-store.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { limitBatchesOf } from '../helpers/batch-limits.js'

limitBatchesOf(AbstractLevelMetaStore as unknown as { prototype: import('../../src/meta/meta-store.js').MetaStore })
limitBatchesOf(MapMetaStore)
