import { CopyObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import { FILE_CONCURRENCY } from '../../src/restore/copy-worker.js'
import { DEFAULTS } from '../../src/options.js'
import { S3ObjectStore } from '../../src/storage/s3-object-store.js'
import { startS3rver } from '../../test/helpers/s3rver.js'
import { seedCollection, seedSegments } from '../seed.js'
import { median, result, timeMs, type Bench, type BenchContext, type BenchResult } from '../types.js'

/** Bytes of request and response bodies through the client, by command. */
class ByteCounter {
  /** Bodies of GetObject / PutObject / UploadPart on segment files (`files/…`): data through the process. */
  dataBytes = 0
  /** Every request and response body (XML, manifests, metadata JSON included). */
  bodyBytes = 0
  readonly commands = new Map<string, number>()

  reset(): void {
    this.dataBytes = 0
    this.bodyBytes = 0
    this.commands.clear()
  }

  /** Adds a deserialize-step middleware to `client` that counts body bytes from Content-Length. */
  attach(client: S3Client, prefix: string): void {
    const dataKey = `${prefix}/files/`
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const request = args.request as { headers?: Record<string, string>; body?: unknown }
        const out = await next(args)
        const response = out.response as { headers?: Record<string, string> }
        const name = context.commandName ?? 'unknown'
        const sent = Number(request.headers?.['content-length'] ?? bodyLength(request.body))
        // A HEAD response carries the object's Content-Length but no body.
        const received = name === 'HeadObjectCommand' ? 0 : Number(response.headers?.['content-length'] ?? 0)
        const key = String((args.input as { Key?: unknown }).Key ?? '')
        this.bodyBytes += sent + received
        if (/^(GetObject|PutObject|UploadPart)Command$/.test(name) && key.startsWith(dataKey)) this.dataBytes += sent + received
        this.commands.set(name, (this.commands.get(name) ?? 0) + 1)
        return out
      },
      { step: 'deserialize', name: 'vecsnapBenchByteCounter' },
    )
  }
}

function bodyLength(body: unknown): number {
  if (body instanceof Uint8Array) return body.byteLength
  if (typeof body === 'string') return Buffer.byteLength(body)
  return 0
}

/** Runs `fn` over `items` with `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++])
    }),
  )
}

/**
 * SPEC section 10: restore on S3 (s3rver) moves no data bytes through the process, and
 * takes ≤ 1.3× the time of issuing the same CopyObject calls directly.
 */
async function runS3(ctx: BenchContext): Promise<BenchResult[]> {
  const segments = ctx.quick ? 30 : 200
  const fileBytes = ctx.quick ? 8 * 1024 : 64 * 1024
  const rounds = ctx.quick ? 1 : 3
  const s3 = await startS3rver()
  const prefix = 'bench'
  const counter = new ByteCounter()
  counter.attach(s3.client, prefix)
  const objects = new S3ObjectStore({ client: s3.client, bucket: s3.bucket, prefix })
  // The SPEC target compares with the same CopyObject calls: without the size lookups (verifyCopiedSizes: false);
  // a second manager over the same store measures the default, which adds a HeadObject per file.
  const meta = new MemoryMetaStore()
  let manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0, verifyCopiedSizes: false })
  await manager.open()
  try {
    const collection = await seedCollection(manager.catalog, { name: 'bench' })
    await seedSegments(manager.catalog, { collection, count: segments, fileBytes })
    const source = (await manager.catalog.listSegments('bench')).sort((a, b) => a.id - b.id)
    const body = new Uint8Array(fileBytes)
    const keys = source.flatMap((s) => [...segmentFiles(s)].map((f) => f.file.key))
    await pool(keys, 16, (k) => objects.put(k, body))
    await manager.createSnapshot({ collectionName: 'bench', snapshotName: 'snap' })
    ctx.log(`  seeded ${segments} segments, ${keys.length} objects of ${fileBytes} bytes on s3rver`)

    const restoreMs: number[] = []
    const directMs: number[] = []
    let dataBytes = 0
    let bodyBytes = 0
    let calls = ''
    const concurrency = DEFAULTS.restoreConcurrency * FILE_CONCURRENCY
    for (let round = 1; round <= rounds; round++) {
      counter.reset()
      const target = `restored_${round}`
      restoreMs.push(
        await timeMs(async () => {
          const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: target })
          await manager.waitForRestore(jobId)
        }),
      )
      dataBytes = Math.max(dataBytes, counter.dataBytes)
      bodyBytes = Math.max(bodyBytes, counter.bodyBytes)
      calls = [...counter.commands].map(([k, v]) => `${k.replace(/Command$/, '')}=${v}`).join(' ')
      // The same copies, issued directly: CopyObject only, same concurrency as the restore's.
      const restored = (await manager.catalog.listSegments(target)).sort((a, b) => a.id - b.id)
      const pairs = source.flatMap((s, i) => {
        const to = [...segmentFiles(restored[i])].map((f) => f.file.key)
        return [...segmentFiles(s)].map((f, j) => ({ from: f.file.key, to: `baseline-${round}/${to[j]}` }))
      })
      directMs.push(
        await timeMs(() =>
          pool(pairs, concurrency, (p) =>
            s3.client.send(new CopyObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${p.to}`, CopySource: `${s3.bucket}/${prefix}/${p.from}`.split('/').map(encodeURIComponent).join('/') })),
          ),
        ),
      )
      ctx.log(`  round ${round}: restore ${restoreMs.at(-1)?.toFixed(0)} ms vs direct CopyObject ${directMs.at(-1)?.toFixed(0)} ms; requests: ${calls}`)
    }
    // The default: every copied file's size is looked up (a HeadObject each).
    await manager.close()
    manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0 })
    await manager.open()
    const verifiedMs: number[] = []
    for (let round = 1; round <= rounds; round++) {
      verifiedMs.push(
        await timeMs(async () => {
          const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: `verified_${round}` })
          await manager.waitForRestore(jobId)
        }),
      )
      ctx.log(`  round ${round}, sizes verified (the default): restore ${verifiedMs.at(-1)?.toFixed(0)} ms`)
    }
    return [
      result({ name: 'restore-s3/data-bytes-through-client', value: dataBytes, unit: 'bytes', baseline: null, maxValue: 0 }),
      result({ name: `restore-s3/time-${keys.length}-objects-sizes-verified`, value: median(verifiedMs), unit: 'ms', baseline: median(directMs) }),
      result({ name: 'restore-s3/all-body-bytes-through-client', value: bodyBytes, unit: 'bytes', baseline: keys.length * fileBytes }),
      result({ name: `restore-s3/time-${keys.length}-objects`, value: median(restoreMs), unit: 'ms', baseline: median(directMs), maxRatio: 1.3 }),
    ]
  } finally {
    await manager.close()
    await s3.stop()
  }
}

/** SPEC section 10: S3 restore, server-side copies only. */
export const restoreS3Bench: Bench = {
  name: 'restore-s3',
  description: 'restore on s3rver: data bytes through the client (target 0) and time vs the same CopyObject calls issued directly',
  run: runS3,
}
