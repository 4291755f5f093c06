import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { FsObjectStore, SnapshotError } from '../index.js'
import type { ObjectStore } from '../index.js'

/** A repository named on the command line: the store it lives in and its prefix there. */
export interface RepositoryLocation {
  store: ObjectStore
  /** The repository's key prefix inside `store` ('' for the whole store). */
  prefix: string
  /** How to show it: the absolute directory, or `s3://bucket/prefix`. */
  display: string
  /** Releases what was created for it (the S3 client). */
  dispose(): void
}

/** Options of {@link openRepositoryLocation}. */
export interface OpenRepositoryLocationOptions {
  /** A directory must exist already (everything but `export`, which creates it). */
  mustExist: boolean
  /** `--region`, for S3 (else AWS_REGION, else us-east-1). */
  region?: string
}

const S3_URL = /^s3:\/\/([^/]*)(?:\/(.*))?$/

/**
 * Opens the repository `spec` names: `s3://bucket[/prefix]` (an S3ObjectStore over a
 * client configured from the environment: `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` for
 * an S3-compatible server, path-style then; credentials, checksum settings and the rest
 * from the SDK's usual AWS_* variables) or a directory (a FsObjectStore over it).
 * `INVALID_ARGUMENT` for an empty spec or an s3 URL without a bucket; `NOT_FOUND` for a
 * directory that must exist and does not.
 */
export async function openRepositoryLocation(spec: string, o: OpenRepositoryLocationOptions): Promise<RepositoryLocation> {
  if (spec === '') throw new SnapshotError('INVALID_ARGUMENT', 'the repository is empty: give a directory or s3://bucket/prefix')
  const s3 = S3_URL.exec(spec)
  if (s3 !== null) {
    const [, bucket, rest = ''] = s3
    if (bucket === '') throw new SnapshotError('INVALID_ARGUMENT', `invalid repository ${JSON.stringify(spec)}: expected s3://bucket or s3://bucket/prefix`)
    const prefix = rest.replace(/\/+$/, '')
    // Loaded only here: @aws-sdk/client-s3 is an optional peer dependency.
    const [{ S3Client }, { S3ObjectStore }] = await Promise.all([import('@aws-sdk/client-s3'), import('../s3.js')]).catch((err: unknown) => {
      throw new Error(`s3:// repositories need the optional package @aws-sdk/client-s3 (npm install @aws-sdk/client-s3): ${err instanceof Error ? err.message : String(err)}`)
    })
    const endpoint = process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined
    const client = new S3Client({
      region: o.region ?? process.env.AWS_REGION ?? 'us-east-1',
      ...(endpoint === undefined ? {} : { endpoint, forcePathStyle: true }),
    })
    const store = new S3ObjectStore({ client, bucket })
    return { store, prefix, display: `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`, dispose: () => client.destroy() }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new SnapshotError('INVALID_ARGUMENT', `unsupported repository ${JSON.stringify(spec)}: give a directory or s3://bucket/prefix`)
  }
  const root = resolve(spec)
  if (o.mustExist) {
    const s = await stat(root).catch(() => undefined)
    if (s === undefined || !s.isDirectory()) throw new SnapshotError('NOT_FOUND', `repository directory not found: ${root}`)
  }
  return { store: new FsObjectStore({ root }), prefix: '', display: root, dispose: () => undefined }
}
