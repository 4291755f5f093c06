import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startS3rver } from '../../test/helpers/s3rver.js'
import { result, type Bench, type BenchContext, type BenchResult } from '../types.js'

const run = promisify(execFile)
const child = fileURLToPath(new URL('./export-rss-child.ts', import.meta.url))
const MB = 1024 * 1024
const MiB = 1024 * 1024

/** What the child reports (bytes, milliseconds). */
interface CopyFigures {
  baseRss: number
  peakRss: number
  peakHeapUsed: number
  ms: number
  bytes: number
}

async function runChild(ctx: BenchContext, args: string[]): Promise<CopyFigures> {
  const p = run(process.execPath, ['--expose-gc', '--import', 'tsx', child, ...args], { maxBuffer: 16 * MB })
  p.child.stderr?.on('data', (d: Buffer) => {
    const text = d.toString().trimEnd()
    // The SDK's notice about Node 20's end of support is not the bench's business.
    if (!/NodeDeprecationWarning|upgrade to node|a\.co\/|trace-warnings|AWS SDK for JavaScript|^$/m.test(text)) ctx.log(text)
  })
  return JSON.parse((await p).stdout.trim().split('\n').at(-1) as string) as CopyFigures
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

/**
 * Issue #18: RSS growth of a fresh process copying one 2 GiB file from a filesystem to
 * S3 (export) and back (import), target < 64 MB each: nothing on the way holds the file
 * in memory. s3rver runs in this process; the copies run in a child, which measures its
 * own RSS. The file comes back byte for byte (SHA-256 compared).
 */
async function runExportRss(ctx: BenchContext): Promise<BenchResult[]> {
  const sizeBytes = ctx.quick ? 256 * MiB : 2048 * MiB
  const label = ctx.quick ? '256mib' : '2gib'
  const root = join(await ctx.tmpDir('export-rss'), 'objects')
  const key = 'files/insert_log/1/2/3/100/1'
  const s3 = await startS3rver()
  try {
    let t = performance.now()
    await writeLargeFile(join(root, key), sizeBytes)
    ctx.log(`  wrote a ${sizeBytes / MiB} MiB file in ${((performance.now() - t) / 1000).toFixed(1)} s`)
    const bucket = await s3.createBucket()
    const args = [root, key, s3.endpoint, bucket, String(sizeBytes)]
    const exported = await runChild(ctx, ['export', ...args])
    ctx.log(`  export FS → S3: ${(exported.ms / 1000).toFixed(1)} s, RSS ${(exported.baseRss / MB).toFixed(0)} → peak ${(exported.peakRss / MB).toFixed(0)} MB, heap used peak ${(exported.peakHeapUsed / MB).toFixed(0)} MB`)
    const imported = await runChild(ctx, ['import', ...args])
    ctx.log(`  import S3 → FS: ${(imported.ms / 1000).toFixed(1)} s, RSS ${(imported.baseRss / MB).toFixed(0)} → peak ${(imported.peakRss / MB).toFixed(0)} MB, heap used peak ${(imported.peakHeapUsed / MB).toFixed(0)} MB`)
    t = performance.now()
    const [a, b] = await Promise.all([sha256(join(root, key)), sha256(join(root, 'imported', key))])
    if (a !== b || exported.bytes !== sizeBytes || imported.bytes !== sizeBytes) throw new Error('the file did not come back whole')
    ctx.log(`  the imported file matches (SHA-256, ${((performance.now() - t) / 1000).toFixed(1)} s)`)
    await rm(root, { recursive: true, force: true })
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
  description: 'RSS growth of a fresh process exporting one 2 GiB file FS → S3 and importing it back (target < 64 MB each)',
  run: runExportRss,
}
