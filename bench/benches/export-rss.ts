import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { startS3rver } from '../../test/helpers/s3rver.js'
import { seedSegmentsDirect } from '../seed.js'
import { result, type Bench, type BenchContext, type BenchResult } from '../types.js'

const run = promisify(execFile)
const child = fileURLToPath(new URL('./export-rss-child.ts', import.meta.url))
const MB = 1024 * 1024
const MiB = 1024 * 1024

/** What the child reports (bytes, milliseconds). */
interface CallFigures {
  baseRss: number
  peakRss: number
  peakHeapUsed: number
  ms: number
  /** The ExportReport, or the imported SnapshotInfo. */
  report: { repositorySnapshotId?: string; copiedBytes?: number; name?: string; sizeBytes?: number }
}

async function runChild(ctx: BenchContext, args: string[]): Promise<CallFigures> {
  const p = run(process.execPath, ['--expose-gc', '--import', 'tsx', child, ...args], { maxBuffer: 16 * MB })
  p.child.stderr?.on('data', (d: Buffer) => {
    const text = d.toString().trimEnd()
    // The SDK's notice about Node 20's end of support is not the bench's business.
    if (!/NodeDeprecationWarning|upgrade to node|a\.co\/|trace-warnings|AWS SDK for JavaScript|^$/m.test(text)) ctx.log(text)
  })
  return JSON.parse((await p).stdout.trim().split('\n').at(-1) as string) as CallFigures
}

/** Writes `sizeBytes` pseudo-random bytes to `path` in 8 MiB chunks (one random block, each chunk stamped with its index). */
async function writeLargeFile(path: string, sizeBytes: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const block = randomBytes(8 * MiB)
  const file = await open(path, 'w')
  try {
    for (let at = 0, i = 0; at < sizeBytes; at += block.byteLength, i++) {
      block.writeUInt32LE(i, 0)
      await file.write(block, 0, Math.min(block.byteLength, sizeBytes - at))
    }
  } finally {
    await file.close()
  }
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** The largest file under `dir` (the imported copy of the big file). */
async function largestFile(dir: string): Promise<{ path: string; size: number }> {
  let best = { path: '', size: -1 }
  for (const rel of (await readdir(dir, { recursive: true })) as string[]) {
    const st = await stat(join(dir, rel))
    if (st.isFile() && st.size > best.size) best = { path: join(dir, rel), size: st.size }
  }
  return best
}

/**
 * Issue #18: RSS growth of a fresh process exporting a snapshot whose one segment holds
 * one 2 GiB file from a filesystem store to a repository on S3, and of another importing
 * it into an empty manager: target < 64 MB each, as nothing on the way holds the file in
 * memory. s3rver runs in this process; each call runs in a child, which measures its own
 * RSS. The imported file is compared with the source (SHA-256).
 */
async function runExportRss(ctx: BenchContext): Promise<BenchResult[]> {
  const sizeBytes = ctx.quick ? 256 * MiB : 2048 * MiB
  const label = ctx.quick ? '256mib' : '2gib'
  const dir = await ctx.tmpDir('export-rss')
  const s3 = await startS3rver()
  try {
    let t = performance.now()
    const source = join(dir, 'source')
    const meta = new LevelMetaStore({ location: join(source, 'meta'), sync: false })
    const manager = new SnapshotManager({ meta, objects: new FsObjectStore({ root: join(source, 'objects'), fsync: false }), gcIntervalMs: 0 })
    await manager.open()
    let sourceFile: string
    try {
      const collection = await manager.catalog.createCollection({
        name: 'big',
        schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }, { name: 'v', dataType: 'FloatVector', dim: 4 }] },
      })
      const [segment] = await seedSegmentsDirect(meta, manager.catalog, { collection, count: 1, files: 1, fileBytes: sizeBytes })
      sourceFile = join(source, 'objects', segment.binlogs[0].files[0].key)
      await writeLargeFile(sourceFile, sizeBytes)
      await manager.createSnapshot({ collectionName: 'big', snapshotName: 'snap' })
    } finally {
      await manager.close()
    }
    ctx.log(`  seeded a snapshot of one ${sizeBytes / MiB} MiB file in ${((performance.now() - t) / 1000).toFixed(1)} s`)
    const bucket = await s3.createBucket()
    const exported = await runChild(ctx, ['export', dir, s3.endpoint, bucket])
    ctx.log(`  exportSnapshot FS → S3: ${(exported.ms / 1000).toFixed(1)} s, RSS ${(exported.baseRss / MB).toFixed(0)} → peak ${(exported.peakRss / MB).toFixed(0)} MB, heap used peak ${(exported.peakHeapUsed / MB).toFixed(0)} MB`)
    if (exported.report.copiedBytes !== sizeBytes || exported.report.repositorySnapshotId === undefined) throw new Error(`the export copied ${exported.report.copiedBytes} bytes`)
    const imported = await runChild(ctx, ['import', dir, s3.endpoint, bucket, exported.report.repositorySnapshotId])
    ctx.log(`  importSnapshot S3 → FS: ${(imported.ms / 1000).toFixed(1)} s, RSS ${(imported.baseRss / MB).toFixed(0)} → peak ${(imported.peakRss / MB).toFixed(0)} MB, heap used peak ${(imported.peakHeapUsed / MB).toFixed(0)} MB`)
    t = performance.now()
    const copy = await largestFile(join(dir, 'target', 'objects'))
    const [a, b] = await Promise.all([sha256(sourceFile), sha256(copy.path)])
    if (a !== b || copy.size !== sizeBytes) throw new Error('the imported file differs from the source')
    ctx.log(`  the imported file matches the source (SHA-256, ${((performance.now() - t) / 1000).toFixed(1)} s)`)
    await rm(dir, { recursive: true, force: true })
    return [
      result({ name: `export/rss-${label}-file`, value: (exported.peakRss - exported.baseRss) / MB, unit: 'MB', baseline: null, maxValue: 64 }),
      result({ name: `import/rss-${label}-file`, value: (imported.peakRss - imported.baseRss) / MB, unit: 'MB', baseline: null, maxValue: 64 }),
      result({ name: `export/time-${label}-file`, value: exported.ms, unit: 'ms', baseline: null }),
      result({ name: `import/time-${label}-file`, value: imported.ms, unit: 'ms', baseline: null }),
    ]
  } finally {
    await s3.stop()
  }
}

/** Issue #18: memory of export and import of one large file. */
export const exportRssBench: Bench = {
  name: 'export-rss',
  description: 'RSS growth of a fresh process exporting a snapshot of one 2 GiB file FS → S3, and of one importing it (target < 64 MB each)',
  run: runExportRss,
}
