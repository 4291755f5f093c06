import { stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { FsObjectStore, LevelMetaStore, SnapshotError, SnapshotManager } from '../index.js'
import type { ObjectStore, SnapshotManagerOptions } from '../index.js'

/** Options every `vecsnap` command accepts (before or after the command name). */
export interface GlobalOptions {
  /** A data directory: LevelDB metadata at `<data>/meta`, objects at `<data>/objects`. */
  data?: string
  /** An S3-compatible endpoint, e.g. `http://127.0.0.1:9000`. */
  s3Endpoint?: string
  /** The bucket (with `--s3-endpoint`). */
  bucket?: string
  /** Key prefix inside the bucket. */
  prefix?: string
  /** The LevelDB metadata directory (with `--s3-endpoint`). */
  meta?: string
  /** S3 region. */
  region?: string
  /** Machine-readable output. */
  json?: boolean
}

/** Manager options the CLI always uses: no background GC, no schedules run on the side (`schedules run` runs them), a short restore tick. */
export const CLI_MANAGER_OPTIONS = Object.freeze({ gcIntervalMs: 0, scheduleIntervalMs: 0, checkIntervalMs: 100 }) satisfies Partial<SnapshotManagerOptions>

async function requireDirectory(path: string, what: string): Promise<void> {
  const s = await stat(path).catch(() => undefined)
  if (s === undefined || !s.isDirectory()) throw new SnapshotError('NOT_FOUND', `${what} not found: ${path}`)
}

async function s3Objects(o: GlobalOptions): Promise<{ objects: ObjectStore; dispose: () => void }> {
  if (o.bucket === undefined) throw new SnapshotError('INVALID_ARGUMENT', '--s3-endpoint needs --bucket')
  // Loaded only here: @aws-sdk/client-s3 is an optional peer dependency.
  const [{ S3Client }, { S3ObjectStore }] = await Promise.all([import('@aws-sdk/client-s3'), import('../s3.js')]).catch((err: unknown) => {
    throw new Error(`the S3 backend needs the optional package @aws-sdk/client-s3 (npm install @aws-sdk/client-s3): ${err instanceof Error ? err.message : String(err)}`)
  })
  const client = new S3Client({
    endpoint: o.s3Endpoint,
    region: o.region ?? process.env.AWS_REGION ?? 'us-east-1',
    forcePathStyle: true,
  })
  // The store never destroys a client it was given: the CLI does, after the manager closed.
  return { objects: new S3ObjectStore({ client, bucket: o.bucket, prefix: o.prefix ?? '' }), dispose: () => client.destroy() }
}

/** An open manager and how to release it. */
export interface OpenedManager {
  manager: SnapshotManager
  /** Closes the manager, then releases what the CLI created for it (the S3 client). */
  close(): Promise<void>
}

/**
 * Builds the manager a command runs against, from the global options, and opens it.
 * `--data <dir>` must name an existing directory; with `--s3-endpoint`, `--meta <dir>`
 * holds the LevelDB metadata and `--bucket`/`--prefix` the objects.
 */
export async function openManager(o: GlobalOptions, extra: Partial<SnapshotManagerOptions> = {}): Promise<OpenedManager> {
  let manager: SnapshotManager
  let dispose = (): void => undefined
  if (o.s3Endpoint !== undefined) {
    if (o.data !== undefined) throw new SnapshotError('INVALID_ARGUMENT', 'use either --data or --s3-endpoint, not both')
    if (o.meta === undefined) throw new SnapshotError('INVALID_ARGUMENT', '--s3-endpoint needs --meta <dir> (where the LevelDB metadata lives)')
    await requireDirectory(resolve(o.meta), 'metadata directory')
    const s3 = await s3Objects(o)
    const objects = s3.objects
    dispose = s3.dispose
    manager = new SnapshotManager({ ...CLI_MANAGER_OPTIONS, ...extra, meta: new LevelMetaStore({ location: resolve(o.meta) }), objects })
  } else {
    const data = o.data ?? (process.env.VECSNAP_DATA || undefined)
    if (data === undefined) throw new SnapshotError('INVALID_ARGUMENT', 'say where the data is: --data <dir>, or --s3-endpoint <url> --bucket <name> --meta <dir>')
    const dir = resolve(data)
    await requireDirectory(dir, 'data directory')
    manager = new SnapshotManager({
      ...CLI_MANAGER_OPTIONS,
      ...extra,
      meta: new LevelMetaStore({ location: join(dir, 'meta') }),
      objects: new FsObjectStore({ root: join(dir, 'objects') }),
    })
  }
  const close = async (): Promise<void> => {
    try {
      await manager.close()
    } finally {
      dispose()
    }
  }
  try {
    await manager.open()
  } catch (err) {
    await close().catch(() => undefined)
    throw err
  }
  return { manager, close }
}
