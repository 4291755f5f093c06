import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { TRANSFER_CONCURRENCY } from '../../src/repository/repository-deps.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { S3ObjectStore } from '../../src/storage/s3-object-store.js'
import { readObjectStream, writeObjectStream } from '../../src/storage/streaming.js'
import { startS3rver } from '../../test/helpers/s3rver.js'
import { seedSegmentsDirect } from '../seed.js'
import { median, result, timeMs, type Bench, type BenchContext, type BenchResult } from '../types.js'

const MiB = 1024 * 1024

/** Files copied at once by the direct uploads and the streamed copies: what an export uses. */
const CONCURRENCY = TRANSFER_CONCURRENCY

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
 * Writes `count` files of `fileBytes` pseudo-random bytes at `keys` under `root`, each one
 * different (content-addressed repositories would store identical files once).
 */
export async function writeDistinctFiles(root: string, keys: readonly string[], fileBytes: number): Promise<void> {
  const base = randomBytes(fileBytes)
  await pool(keys, 8, async (key) => {
    const body = Buffer.from(base)
    body.writeUInt32LE(keys.indexOf(key), 0)
    const path = join(root, key)
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, body)
  })
}

/**
 * SPEC section 14 / issue #18: `exportSnapshot` from a filesystem store to a repository on
 * S3 (s3rver, in this process) of a snapshot of 1 GiB in 1k segments of one 1 MiB file
 * each, against the same PutObject uploads issued directly (read each file, PutObject
 * it) at the export's concurrency: target ≤ 1.3×. Then a second export of the same
 * snapshot, which must copy no byte (target 0). Also measures the streaming primitive
 * the export is built on (`readObjectStream` from the FsObjectStore into
 * `writeObjectStream` on the S3ObjectStore), informative. Three rounds (medians), each
 * running the three in turn, in a rotated order, each after a `sync` (not timed).
 */
async function runExport(ctx: BenchContext): Promise<BenchResult[]> {
  const segments = ctx.quick ? 64 : 1024
  const fileBytes = ctx.quick ? 256 * 1024 : MiB
  const totalMiB = (segments * fileBytes) / MiB
  const rounds = ctx.quick ? 1 : 3
  const dir = await ctx.tmpDir('export')
  const root = join(dir, 'objects')
  const source = new FsObjectStore({ root, fsync: false })
  const meta = new MemoryMetaStore()
  const manager = new SnapshotManager({ meta, objects: source, gcIntervalMs: 0 })
  const s3 = await startS3rver()
  await manager.open()
  try {
    const collection = await manager.catalog.createCollection({
      name: 'bench',
      schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }, { name: 'v', dataType: 'FloatVector', dim: 4 }] },
    })
    const seeded = await seedSegmentsDirect(meta, manager.catalog, { collection, count: segments, files: 1, fileBytes })
    const keys = seeded.flatMap((s) => s.binlogs[0].files.map((f) => f.key))
    await writeDistinctFiles(root, keys, fileBytes)
    await manager.createSnapshot({ collectionName: 'bench', snapshotName: 'snap' })
    ctx.log(`  seeded ${segments} segments of one ${fileBytes / 1024} KiB file (${totalMiB} MiB) and snapshotted them`)

    const tag = segments === 1024 && fileBytes === MiB ? '1gib-1k-segments' : `${totalMiB}mib-${segments}-segments`
    const rate = (ms: number) => `${((totalMiB * 1000) / ms).toFixed(0)} MiB/s`
    /** Deletes everything in `store` (s3rver keeps objects in memory). */
    const empty = async (store: S3ObjectStore) => {
      const keys: string[] = []
      for await (const o of store.list('')) keys.push(o.key)
      await store.delete(keys)
    }
    const directMs: number[] = []
    const streamMs: number[] = []
    const exportMs: number[] = []
    const secondMs: number[] = []
    let secondCopiedBytes = 0
    // Each timed phase starts with the disk's writeback done (s3rver writes every object to a
    // directory, and a phase would otherwise pay for the previous one's flushing and deletes),
    // and the rounds rotate the order, so that neither side always runs after the other.
    const settle = (): void => {
      execFileSync('sync')
    }
    const phases: (() => Promise<string>)[] = [
      async () => {
        const direct = new S3ObjectStore({ client: s3.client, bucket: await s3.createBucket() })
        settle()
        directMs.push(
          await timeMs(() =>
            pool(keys, CONCURRENCY, async (key) => {
              const body = await readFile(join(root, key))
              await s3.client.send(new PutObjectCommand({ Bucket: direct.bucket, Key: key, Body: body, ContentLength: body.byteLength }))
            }),
          ),
        )
        await empty(direct)
        return `direct PutObject ${directMs.at(-1)!.toFixed(0)} ms (${rate(directMs.at(-1)!)})`
      },
      async () => {
        const streamed = new S3ObjectStore({ client: s3.client, bucket: await s3.createBucket() })
        settle()
        streamMs.push(
          await timeMs(() =>
            pool(keys, CONCURRENCY, async (key) => {
              const body = await readObjectStream(source, key)
              if (body === undefined) throw new Error(`missing ${key}`)
              await writeObjectStream(streamed, key, body, { sizeBytes: fileBytes })
            }),
          ),
        )
        const copied = (await Promise.all(keys.map((k) => streamed.head(k)))).filter((i) => i?.size === fileBytes).length
        if (copied !== keys.length) throw new Error(`streamed ${copied} of ${keys.length} files`)
        await empty(streamed)
        return `streamed copies ${streamMs.at(-1)!.toFixed(0)} ms (${rate(streamMs.at(-1)!)})`
      },
      async () => {
        const repository = new S3ObjectStore({ client: s3.client, bucket: await s3.createBucket() })
        settle()
        const first = await manager.exportSnapshot('snap', { to: repository, prefix: 'repo' })
        if (first.copiedFiles !== keys.length) throw new Error(`the export copied ${first.copiedFiles} of ${keys.length} files`)
        exportMs.push(first.timeCostMs)
        settle()
        const second = await manager.exportSnapshot('snap', { to: repository, prefix: 'repo' })
        secondMs.push(second.timeCostMs)
        secondCopiedBytes = Math.max(secondCopiedBytes, second.copiedBytes)
        await empty(repository)
        return `exportSnapshot ${first.timeCostMs} ms (${rate(first.timeCostMs)}; copied ${first.copiedFiles} files), second export ${second.timeCostMs} ms (copied ${second.copiedFiles} files, ${second.copiedBytes} bytes)`
      },
    ]
    for (let round = 1; round <= rounds; round++) {
      const said: string[] = []
      for (let i = 0; i < phases.length; i++) said.push(await phases[(i + round - 1) % phases.length]())
      ctx.log(`  round ${round}: ${said.join(', ')}`)
    }

    return [
      result({ name: `export/fs-to-s3-${tag}`, value: median(exportMs), unit: 'ms', baseline: median(directMs), maxRatio: 1.3 }),
      result({ name: 'export/second-export-copied-bytes', value: secondCopiedBytes, unit: 'bytes', baseline: null, maxValue: 0 }),
      result({ name: `export/second-export-time-${tag}`, value: median(secondMs), unit: 'ms', baseline: median(directMs) }),
      result({ name: `export/stream-fs-to-s3-${tag}`, value: median(streamMs), unit: 'ms', baseline: median(directMs) }),
    ]
  } finally {
    await manager.close()
    await s3.stop()
  }
}

/** Issue #18: export FS → S3, against direct uploads. */
export const exportBench: Bench = {
  name: 'export',
  description: 'exportSnapshot of 1 GiB in 1k segments from a filesystem to s3rver, vs the same PutObject uploads issued directly (target ≤ 1.3×); bytes copied by a second export (target 0)',
  run: runExport,
}
