import { join } from 'node:path'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { MetaStore } from '../../src/meta/meta-store.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { seedCollection, seedSegments } from '../seed.js'
import { median, result, timeMs, type Bench, type BenchContext, type BenchResult } from '../types.js'

/** Files per seeded segment (see `seedSegments`). */
const FILES_PER_SEGMENT = 10

/** Lists every object under `files/` and counts them: the baseline. */
async function bareListing(objects: FsObjectStore): Promise<number> {
  let n = 0
  for await (const _ of objects.list('files/')) n++
  return n
}

async function runOne(ctx: BenchContext, metaKind: 'memory' | 'level'): Promise<BenchResult[]> {
  const objectsCount = ctx.quick ? 10_000 : 100_000
  const segments = objectsCount / FILES_PER_SEGMENT
  const rounds = ctx.quick ? 3 : 5
  const dir = await ctx.tmpDir(`gc-${metaKind}`)
  const root = join(dir, 'objects')
  const meta: MetaStore = metaKind === 'level' ? new LevelMetaStore({ location: join(dir, 'meta'), sync: false }) : new MemoryMetaStore()
  const objects = new FsObjectStore({ root, fsync: false })
  // Zero grace, so the pass considers everything; the loop is off, passes are timed one by one.
  const manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0, dropGraceMs: 0, orphanGraceMs: 0 })
  await manager.open()
  try {
    const collection = await seedCollection(manager.catalog, { name: 'bench' })
    let t = performance.now()
    const ids = await seedSegments(manager.catalog, { collection, count: segments, fileBytes: 64, root, onProgress: (n) => ctx.log(`  seeded ${n}/${segments}`) })
    ctx.log(`  [${metaKind}] seeded ${segments} segments (${objectsCount} objects) in ${((performance.now() - t) / 1000).toFixed(1)} s`)
    // A snapshot of everything, then compaction drops 1% of the segments: the snapshot pins them.
    await manager.createSnapshot({ collectionName: 'bench', snapshotName: 'all' })
    for (const id of ids.slice(0, segments / 100)) await manager.catalog.dropSegment(id)
    const listed = await bareListing(objects)
    if (listed !== objectsCount) throw new Error(`expected ${objectsCount} objects, listed ${listed}`)

    // Warm both paths once (page cache, JIT), then alternate.
    await bareListing(objects)
    await manager.runGc()
    const gcMs: number[] = []
    const listMs: number[] = []
    let report = await manager.runGc({ dryRun: true })
    for (let round = 1; round <= rounds; round++) {
      listMs.push(await timeMs(() => bareListing(objects)))
      gcMs.push(await timeMs(async () => (report = await manager.runGc())))
      ctx.log(`  [${metaKind}] round ${round}: gc ${gcMs.at(-1)?.toFixed(0)} ms, bare listing ${listMs.at(-1)?.toFixed(0)} ms`)
    }
    if (report.keptForSnapshots !== (segments / 100) * FILES_PER_SEGMENT || report.deletedObjects !== 0) {
      throw new Error(`unexpected report ${JSON.stringify(report)}`)
    }

    // Informative: a pass that collects the 1% once the snapshot is gone.
    await manager.dropSnapshot('all')
    let collected = report
    const collectMs = await timeMs(async () => (collected = await manager.runGc()))
    if (collected.deletedObjects !== (segments / 100) * FILES_PER_SEGMENT) throw new Error(`unexpected report ${JSON.stringify(collected)}`)
    ctx.log(`  [${metaKind}] collecting ${collected.deletedObjects} objects: ${collectMs.toFixed(0)} ms`)

    const prefix = `gc-pass/${metaKind}`
    return [
      result({ name: `${prefix}/pass-${objectsCount}-objects`, value: median(gcMs), unit: 'ms', baseline: median(listMs), maxRatio: 1.5 }),
      result({ name: `${prefix}/pass-collecting-${collected.deletedObjects}`, value: collectMs, unit: 'ms', baseline: median(listMs) }),
    ]
  } finally {
    await manager.close()
  }
}

/** SPEC section 10: a GC pass over 100k objects, ≤ 1.5× a bare listing of them. */
export const gcPassBench: Bench = {
  name: 'gc-pass',
  description: 'GC pass over 100k objects (10k segments, one snapshot of all) vs a bare listing of files/',
  async run(ctx) {
    const out: BenchResult[] = []
    for (const kind of ['memory', 'level'] as const) out.push(...(await runOne(ctx, kind)))
    return out
  },
}
