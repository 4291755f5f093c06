/**
 * `vecsnap/conformance`: the port conformance suites, for authors of their own adapters.
 * Each registers vitest `describe`/`it` blocks; call it from a test file.
 */
export { collect } from './collect.js'
export { metaStoreSuite, putAll } from './meta-store.suite.js'
export type { MetaStoreFixture } from './meta-store.suite.js'
export { objectStoreSuite, listKeys } from './object-store.suite.js'
export type { ObjectStoreFixture, ObjectStoreCheck } from './object-store.suite.js'
