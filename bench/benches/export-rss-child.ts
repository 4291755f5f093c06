/**
 * Child process of the export/import RSS bench (run by bench/benches/export-rss.ts).
 *
 *   node --expose-gc --import tsx export-rss-child.ts export <root> <key> <endpoint> <bucket> <sizeBytes>
 *   node --expose-gc --import tsx export-rss-child.ts import <root> <key> <endpoint> <bucket> <sizeBytes>
 *
 * `export` streams the file `key` of the FsObjectStore at `root` to the S3ObjectStore on
 * `endpoint` (s3rver in the parent, prefix `repo`); `import` streams it back from there to
 * `imported/<key>` under `root`. Both go through `readObjectStream`/`writeObjectStream`,
 * the primitives of export and import. Prints, as one JSON line, the RSS once the stores
 * are built (after a GC) and the peak RSS sampled every 20 ms while the copy runs.
 */
import { S3Client } from '@aws-sdk/client-s3'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { S3ObjectStore } from '../../src/storage/s3-object-store.js'
import { readObjectStream, writeObjectStream } from '../../src/storage/streaming.js'

const [mode, root, key, endpoint, bucket, size] = process.argv.slice(2)
const sizeBytes = Number(size)
const client = new S3Client({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
})
const fs = new FsObjectStore({ root, fsync: false })
const s3 = new S3ObjectStore({ client, bucket, prefix: 'repo' })
const [from, to, toKey] = mode === 'export' ? [fs, s3, key] : mode === 'import' ? [s3, fs, `imported/${key}`] : []
if (from === undefined || to === undefined || toKey === undefined) throw new TypeError(`Unknown mode \`${mode}\``)

// Load lib-storage and warm the client up before the baseline, so the figure is the copy's.
await to.putStream!('warm-up', (async function* () {
  yield new Uint8Array(16)
})())
await to.delete(['warm-up'])
globalThis.gc?.()
const baseRss = process.memoryUsage.rss()
let peakRss = baseRss
let peakHeapUsed = process.memoryUsage().heapUsed
const sample = (): void => {
  const m = process.memoryUsage()
  peakRss = Math.max(peakRss, m.rss)
  peakHeapUsed = Math.max(peakHeapUsed, m.heapUsed)
}
const timer = setInterval(sample, 20)
const started = performance.now()
const body = await readObjectStream(from, key)
if (body === undefined) throw new Error(`no object ${key}`)
const info = await writeObjectStream(to, toKey, body, { sizeBytes })
const ms = performance.now() - started
clearInterval(timer)
sample()
client.destroy()
process.stdout.write(`${JSON.stringify({ baseRss, peakRss, peakHeapUsed, ms, bytes: info.size })}\n`)
