/**
 * `vecsnap/s3`: the S3 ObjectStore. Needs the optional peer dependency
 * `@aws-sdk/client-s3`; only this entry imports it.
 */
export { S3ObjectStore } from './storage/s3-object-store.js'
export type { S3ObjectStoreOptions } from './storage/s3-object-store.js'
