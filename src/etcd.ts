/**
 * `vecsnap/etcd`: the etcd MetaStore. Needs the optional peer dependency `etcd3`; only
 * this entry imports it.
 */
export { EtcdMetaStore } from './meta/etcd-meta-store.js'
export type { EtcdMetaStoreOptions } from './meta/etcd-meta-store.js'
export { EtcdLeadership } from './cluster/etcd-leadership.js'
export type { EtcdLeadershipOptions } from './cluster/etcd-leadership.js'
