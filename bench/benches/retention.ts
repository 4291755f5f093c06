import { join } from 'node:path'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { MemoryObjects } from '../../test/helpers/memory-objects.js'
import { seedCollection, seedSegmentsDirect } from '../seed.js'
import { median, result, timeMs, type Bench, type BenchResult } from '../types.js'

/**
 * SPEC section 12: `pruneSnapshots` dry run over 1,000 snapshots (a collection snapshotted
 * hourly for ~6 weeks, one new segment between snapshots, a 24 hourly + 7 daily + 4
 * weekly policy), as a ratio to `listSnapshots` of the same store: what a prune adds to
 * listing is the retention itself and one space accounting.
 */

const HOUR = 3_600_000

export const retentionBench: Bench = {
  name: 'retention',
  description: 'pruneSnapshots dry run over 1,000 hourly snapshots (24 hourly + 7 daily + 4 weekly) vs listSnapshots of the same store',
  async run(ctx): Promise<BenchResult[]> {
    const snapshots = ctx.quick ? 100 : 1_000
    const dir = await ctx.memDir('retention')
    let t = Date.UTC(2026, 9, 1)
    const meta = new LevelMetaStore({ location: join(dir, 'meta'), sync: false })
    const objects = new MemoryObjects()
    const manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0, now: () => t })
    await manager.open()
    try {
      const collection = await seedCollection(manager.catalog, { name: 'bench', dim: 4 })
      await seedSegmentsDirect(meta, manager.catalog, { collection, count: 100, objects })
      const started = performance.now()
      for (let i = 0; i < snapshots; i++) {
        await seedSegmentsDirect(meta, manager.catalog, { collection, count: 1, objects })
        t += HOUR
        await manager.createSnapshot({ collectionName: 'bench', snapshotName: `h${String(i).padStart(4, '0')}` })
      }
      ctx.log(`  created ${snapshots} snapshots in ${((performance.now() - started) / 1000).toFixed(1)} s`)
      const policy = { keepHourly: 24, keepDaily: 7, keepWeekly: 4 }
      const pruneMs: number[] = []
      const listMs: number[] = []
      let kept = 0
      let dropped = 0
      for (let r = 0; r < 5; r++) {
        listMs.push(await timeMs(() => manager.listSnapshots()))
        pruneMs.push(
          await timeMs(async () => {
            const report = await manager.pruneSnapshots({ policy, dryRun: true })
            kept = report.kept.length
            dropped = report.dropped.length
          }),
        )
      }
      if (kept + dropped !== snapshots) throw new Error(`the prune saw ${kept + dropped} snapshots`)
      ctx.log(`  prune dry run: keeps ${kept}, would drop ${dropped}: ${median(pruneMs).toFixed(1)} ms (listSnapshots ${median(listMs).toFixed(1)} ms)`)
      return [
        result({ name: `retention/prune-dry-run-${snapshots}-snapshots`, value: median(pruneMs), unit: 'ms', baseline: median(listMs) }),
        result({ name: `retention/prune-dry-run-kept-of-${snapshots}`, value: kept, unit: 'count', baseline: null }),
      ]
    } finally {
      await manager.close()
    }
  },
}
