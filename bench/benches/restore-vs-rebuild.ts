import { join } from 'node:path'
import { FsObjectStore, LevelMetaStore, SnapshotManager } from '../../src/index.js'
import { TinyVectorDb } from '../../examples/tiny-vector-db/index.js'
import { randomVectors, rowsOf, sequentialIds } from '../../examples/demo/data.js'
import { median, result, timeMs, type Bench, type BenchContext, type BenchResult } from '../types.js'

/**
 * Restore vs rebuild on the demo database (examples/tiny-vector-db): the time to restore
 * a snapshot of a collection (copying its binlogs and HNSW index files, hard links on one
 * filesystem) against the time to build the same collection from its rows: insert,
 * flush binlogs and build every segment's HNSW index (M=16) — the path a restore saves a
 * user from. Target (SPEC section 10): restore ≥ 50× faster, i.e. ratio ≤ 0.02.
 */

const SEED = 42

async function run(ctx: BenchContext): Promise<BenchResult[]> {
  const rows = ctx.quick ? 10_000 : 100_000
  const dim = 128
  const segments = ctx.quick ? 2 : 10
  const restores = ctx.quick ? 2 : 3
  const dir = await ctx.tmpDir('restore-vs-rebuild')
  const objects = new FsObjectStore({ root: join(dir, 'objects'), fsync: false })
  const manager = new SnapshotManager({
    meta: new LevelMetaStore({ location: join(dir, 'meta'), sync: false }),
    objects,
    gcIntervalMs: 0,
    checkIntervalMs: 20,
  })
  await manager.open()
  const db = new TinyVectorDb({ catalog: manager.catalog, objects })
  try {
    const vectors = randomVectors(rows, dim, SEED)
    ctx.log(`  building ${rows} × ${dim}-d in ${segments} segments (insert + flush + HNSW)…`)
    await db.createCollection('source', { dim })
    const rebuildMs = await timeMs(async () => {
      for (let s = 0; s < segments; s++) {
        const from = Math.floor((rows * s) / segments)
        const to = Math.floor((rows * (s + 1)) / segments)
        await db.insert('source', sequentialIds(1 + from, to - from), rowsOf(vectors, dim, from, to))
        await db.flush('source')
      }
      await db.createIndex('source', { M: 16 })
    })
    ctx.log(`  rebuild: ${(rebuildMs / 1000).toFixed(1)} s`)
    const snapshotMs = await timeMs(() => manager.createSnapshot({ collectionName: 'source', snapshotName: 'snap' }))
    const times: number[] = []
    let bytes = 0
    for (let i = 0; i < restores; i++) {
      times.push(
        await timeMs(async () => {
          const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: `restored_${i}` })
          bytes = (await manager.waitForRestore(jobId)).totalBytes
        }),
      )
    }
    const restoreMs = median(times)
    ctx.log(`  restore: ${restoreMs.toFixed(0)} ms (median of ${restores}, ${(bytes / 1048576).toFixed(0)} MiB)`)
    // The figures only count if the restored collection answers like the source.
    const queries = randomVectors(5, dim, SEED + 1)
    for (let q = 0; q < 5; q++) {
      const query = rowsOf(queries, dim, q, q + 1)
      const [a, b] = [await db.search('source', query, 10), await db.search('restored_0', query, 10)]
      if (JSON.stringify(a, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) !== JSON.stringify(b, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))) {
        throw new Error(`restored collection answers query ${q} differently from the source`)
      }
    }
    return [
      result({ name: 'restore-vs-rebuild/restore', value: restoreMs, unit: 'ms', baseline: rebuildMs, maxRatio: 0.02 }),
      result({ name: 'restore-vs-rebuild/speedup', value: rebuildMs / restoreMs, unit: 'x', minValue: 50 }),
      result({ name: 'restore-vs-rebuild/rebuild', value: rebuildMs, unit: 'ms' }),
      result({ name: 'restore-vs-rebuild/snapshot-create', value: snapshotMs, unit: 'ms' }),
    ]
  } finally {
    db.close()
    await manager.close()
  }
}

/** Restore vs re-insert + HNSW rebuild on the demo database, 100k × 128-d (`--quick`: 10k). */
export const restoreVsRebuildBench: Bench = {
  name: 'restore-vs-rebuild',
  description: 'restore a demo-DB snapshot vs re-insert + HNSW rebuild (100k × 128-d; quick 10k)',
  run,
}
