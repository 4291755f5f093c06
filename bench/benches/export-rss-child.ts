/**
 * Child process of the export/import RSS bench (run by bench/benches/export-rss.ts).
 *
 *   node --expose-gc --import tsx export-rss-child.ts export <dir> <endpoint> <bucket>
 *   node --expose-gc --import tsx export-rss-child.ts import <dir> <endpoint> <bucket> <repositorySnapshotId>
 *
 * `export` opens the manager seeded under `<dir>/source` (LevelDB + a filesystem store)
 * and exports its snapshot `snap` to the repository `repo` in `<bucket>` on `<endpoint>`
 * (s3rver in the parent); `import` opens an empty manager under `<dir>/target` and
 * imports the entry as `imported`. Prints, as one JSON line, the RSS once the manager is
 * open and the S3 client warmed up (after a GC), the peak RSS sampled every 20 ms while
 * the call runs, and what it reported.
 */
import { join } from 'node:path'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { S3ObjectStore } from '../../src/storage/s3-object-store.js'
import { s3rverClient } from '../../test/helpers/s3rver-client.js'

const [mode, dir, endpoint, bucket, id] = process.argv.slice(2)
if (mode !== 'export' && mode !== 'import') throw new TypeError(`Unknown mode \`${mode}\``)
const client = s3rverClient(endpoint)
const side = join(dir, mode === 'export' ? 'source' : 'target')
const manager = new SnapshotManager({
  meta: new LevelMetaStore({ location: join(side, 'meta'), sync: false }),
  objects: new FsObjectStore({ root: join(side, 'objects'), fsync: false }),
  gcIntervalMs: 0,
})
const repository = new S3ObjectStore({ client, bucket })
await manager.open()
// Warm the client up (code loaded, a connection open) before the baseline, so the figure is the call's.
await repository.put('warm-up', new Uint8Array(16))
await repository.get('warm-up')
await repository.delete(['warm-up'])
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
const report =
  mode === 'export'
    ? await manager.exportSnapshot('snap', { to: repository, prefix: 'repo' })
    : await manager.importSnapshot({ from: repository, prefix: 'repo', repositorySnapshotId: id, snapshotName: 'imported' })
const ms = performance.now() - started
clearInterval(timer)
sample()
await manager.close()
client.destroy()
process.stdout.write(`${JSON.stringify({ baseRss, peakRss, peakHeapUsed, ms, report })}\n`)
