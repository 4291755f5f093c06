import { join } from 'node:path'
import { EtcdMetaStore } from '../../src/etcd.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { MetaBatchOptions, MetaOperation, MetaStore } from '../../src/meta/meta-store.js'
import { prefixRange } from '../../src/meta/meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { startEtcd } from '../../test/helpers/etcd.js'
import { MemoryObjects } from '../../test/helpers/memory-objects.js'
import { seedCollection, seedSegmentsDirect } from '../seed.js'
import { median, result, timeMs, type Bench, type BenchContext, type BenchResult } from '../types.js'

/**
 * SPEC section 11 figures: MetaStore operations of one create and one drop at three
 * collection sizes (must not grow), a create on a stock etcd against the same create on
 * LevelDB, `listSnapshots` over 100 snapshots of a 10k-segment collection against a bare
 * range read of 100 small keys, and the lists and manifests a GC pass reads when nothing
 * changed since the last one (0).
 */

/** Counts the batches a MetaStore is asked for, with their operations and expectations. */
function counting<T extends MetaStore>(store: T): T & { counts: { batches: number; operations: number; expectations: number } } {
  const counts = { batches: 0, operations: 0, expectations: 0 }
  const batch = store.batch.bind(store)
  store.batch = async (operations: readonly MetaOperation[], options?: MetaBatchOptions) => {
    counts.batches++
    counts.operations += operations.length
    counts.expectations += options?.expect?.length ?? 0
    return batch(operations, options)
  }
  return Object.assign(store, { counts })
}

async function opsAt(ctx: BenchContext, segments: number): Promise<{ create: number; drop: number; createBatches: number; dropBatches: number }> {
  const meta = counting(new MemoryMetaStore())
  const objects = new MemoryObjects()
  const manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0 })
  await manager.open()
  try {
    const collection = await seedCollection(manager.catalog, { name: 'bench', dim: 4 })
    await seedSegmentsDirect(meta, manager.catalog, { collection, count: segments, perTransaction: 1000 })
    // A first snapshot, so that the measured create reuses manifests and the drop has a sharer to look at.
    await manager.createSnapshot({ collectionName: 'bench', snapshotName: 'first' })
    const before = { ...meta.counts }
    await manager.createSnapshot({ collectionName: 'bench', snapshotName: 'measured' })
    const afterCreate = { ...meta.counts }
    await manager.dropSnapshot('measured')
    const afterDrop = { ...meta.counts }
    const ops = (a: typeof before, b: typeof before) => b.operations + b.expectations - a.operations - a.expectations
    ctx.log(`  [${segments}] create: ${afterCreate.batches - before.batches} batches, ${ops(before, afterCreate)} operations + expectations; drop: ${afterDrop.batches - afterCreate.batches} batches, ${ops(afterCreate, afterDrop)}`)
    return { create: ops(before, afterCreate), drop: ops(afterCreate, afterDrop), createBatches: afterCreate.batches - before.batches, dropBatches: afterDrop.batches - afterCreate.batches }
  } finally {
    await manager.close()
  }
}

async function metaOps(ctx: BenchContext): Promise<BenchResult[]> {
  const sizes = ctx.quick ? [100, 1_000, 10_000] : [100, 10_000, 100_000]
  const at = []
  for (const n of sizes) at.push(await opsAt(ctx, n))
  const out: BenchResult[] = []
  for (let i = 1; i < sizes.length; i++) {
    out.push(result({ name: `scale/meta-ops-create-${sizes[i]}-segments`, value: at[i].create, unit: 'ops', baseline: at[0].create, maxRatio: 1 }))
    out.push(result({ name: `scale/meta-ops-drop-${sizes[i]}-segments`, value: at[i].drop, unit: 'ops', baseline: at[0].drop, maxRatio: 1 }))
  }
  out.push(result({ name: `scale/meta-batches-create`, value: at[at.length - 1].createBatches, unit: 'count', baseline: at[0].createBatches, maxRatio: 1 }))
  out.push(result({ name: `scale/meta-batches-drop`, value: at[at.length - 1].dropBatches, unit: 'count', baseline: at[0].dropBatches, maxRatio: 1 }))
  return out
}

/** A manager over `meta` with a seeded 10k-segment (or `segments`) collection, its objects under `dir`. */
async function seeded(meta: MetaStore, dir: string, segments: number): Promise<SnapshotManager> {
  const manager = new SnapshotManager({ meta, objects: new FsObjectStore({ root: join(dir, 'objects'), fsync: false }), gcIntervalMs: 0 })
  await manager.open()
  const collection = await seedCollection(manager.catalog, { name: 'bench', dim: 4 })
  await seedSegmentsDirect(meta, manager.catalog, { collection, count: segments })
  return manager
}

async function etcdCreate(ctx: BenchContext): Promise<BenchResult[]> {
  const segments = ctx.quick ? 1_000 : 10_000
  const rounds = ctx.quick ? 2 : 5
  const server = await startEtcd()
  if ('skip' in server) {
    ctx.log(`  etcd create skipped: ${server.skip}`)
    return []
  }
  const managers: SnapshotManager[] = []
  try {
    const levelDir = await ctx.memDir('scale-level')
    const level = await seeded(new LevelMetaStore({ location: join(levelDir, 'meta'), sync: false }), levelDir, segments)
    managers.push(level)
    // etcd started with no limit flags, the adapter with its defaults.
    const etcd = await seeded(new EtcdMetaStore({ hosts: server.endpoint }), await ctx.memDir('scale-etcd'), segments)
    managers.push(etcd)
    const times = { level: [] as number[], etcd: [] as number[] }
    // A warm-up create each, then rounds alternating which goes first; each create is
    // dropped after, so that the next writes every manifest again (no reuse).
    for (let r = 0; r <= rounds; r++) {
      const order = r % 2 === 0 ? (['level', 'etcd'] as const) : (['etcd', 'level'] as const)
      for (const kind of order) {
        const m = kind === 'level' ? level : etcd
        const ms = await timeMs(() => m.createSnapshot({ collectionName: 'bench', snapshotName: `r${r}` }))
        await m.dropSnapshot(`r${r}`)
        if (r > 0) times[kind].push(ms)
      }
    }
    ctx.log(`  create of ${segments} segments: LevelDB ${times.level.map((t) => t.toFixed(0)).join(', ')} ms; etcd ${times.etcd.map((t) => t.toFixed(0)).join(', ')} ms`)
    return [result({ name: `scale/etcd-create-${segments}-segments`, value: median(times.etcd), unit: 'ms', baseline: median(times.level), maxRatio: 3 })]
  } finally {
    for (const m of managers) await m.close()
    await server.stop()
  }
}

async function listAndGc(ctx: BenchContext): Promise<BenchResult[]> {
  const segments = ctx.quick ? 1_000 : 10_000
  const snapshots = ctx.quick ? 20 : 100
  const dir = await ctx.tmpDir('scale-list')
  const meta = new LevelMetaStore({ location: join(dir, 'meta'), sync: false })
  const objects = new MemoryObjects()
  const manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0 })
  await manager.open()
  try {
    const collection = await seedCollection(manager.catalog, { name: 'bench', dim: 4 })
    await seedSegmentsDirect(meta, manager.catalog, { collection, count: segments, objects })
    const t = performance.now()
    for (let i = 0; i < snapshots; i++) {
      // Each snapshot after a small change, as a schedule would take them.
      await seedSegmentsDirect(meta, manager.catalog, { collection, count: 1, objects })
      await manager.createSnapshot({ collectionName: 'bench', snapshotName: `s${String(i).padStart(3, '0')}` })
    }
    ctx.log(`  created ${snapshots} snapshots of ~${segments} segments in ${((performance.now() - t) / 1000).toFixed(1)} s`)
    // The baseline: a bare range read of as many small keys.
    await meta.batch(Array.from({ length: snapshots }, (_, i) => ({ type: 'put' as const, key: `bench/small/${String(i).padStart(4, '0')}`, value: '{"a":1}' })))
    const listMs: number[] = []
    const rangeMs: number[] = []
    for (let r = 0; r < 7; r++) {
      listMs.push(await timeMs(async () => {
        const list = await manager.listSnapshots()
        if (list.length !== snapshots) throw new Error(`listed ${list.length}`)
      }))
      rangeMs.push(await timeMs(async () => {
        let n = 0
        for await (const [, v] of meta.iterate(prefixRange('bench/small/'))) n += JSON.parse(v).a
        if (n !== snapshots) throw new Error(`read ${n}`)
      }))
    }
    const list = median(listMs)
    const range = median(rangeMs)

    const first = { ...objects.reads }
    await manager.runGc()
    const afterFirst = { ...objects.reads }
    await manager.runGc()
    const afterSecond = { ...objects.reads }
    ctx.log(`  first GC pass read ${afterFirst.list - first.list} lists and ${afterFirst.manifest - first.manifest} manifests`)

    // Space accounting (SPEC 13): the first report reads every manifest; later ones none.
    // Baseline: a dry-run GC pass with nothing changed (the same catalog, record and list reads).
    const coldSpaceMs = await timeMs(async () => {
      const r = await manager.spaceReport()
      if (r.snapshots.length !== snapshots) throw new Error(`reported ${r.snapshots.length}`)
    })
    const beforeWarm = { ...objects.reads }
    const spaceMs: number[] = []
    const gcMs: number[] = []
    for (let r = 0; r < 3; r++) {
      spaceMs.push(await timeMs(() => manager.spaceReport()))
      gcMs.push(await timeMs(() => manager.runGc({ dryRun: true })))
    }
    const afterWarm = { ...objects.reads }
    ctx.log(`  spaceReport: first ${coldSpaceMs.toFixed(0)} ms, then ${median(spaceMs).toFixed(0)} ms (dry-run GC ${median(gcMs).toFixed(0)} ms)`)
    return [
      result({ name: `scale/space-report-${snapshots}x${segments}`, value: median(spaceMs), unit: 'ms', baseline: median(gcMs), maxRatio: 2 }),
      result({ name: `scale/space-report-first-${snapshots}x${segments}`, value: coldSpaceMs, unit: 'ms', baseline: median(gcMs) }),
      // The comparison: a report against listing the same snapshots (one small record each).
      result({ name: `scale/space-report-vs-list-snapshots-${snapshots}x${segments}`, value: median(spaceMs), unit: 'ms', baseline: list }),
      result({ name: 'scale/space-report-manifests-read-warm', value: afterWarm.manifest - beforeWarm.manifest, unit: 'count', baseline: 0, maxValue: 0 }),
      result({ name: `scale/list-snapshots-${snapshots}x${segments}`, value: list, unit: 'ms', baseline: range, maxValue: Math.round((2 * range + 10) * 1000) / 1000 }),
      result({ name: 'scale/gc-manifests-read-nothing-changed', value: afterSecond.manifest - afterFirst.manifest, unit: 'count', baseline: afterFirst.manifest - first.manifest, maxValue: 0 }),
      result({ name: 'scale/gc-lists-read-nothing-changed', value: afterSecond.list - afterFirst.list, unit: 'count', baseline: afterFirst.list - first.list, maxValue: 0 }),
    ]
  } finally {
    await manager.close()
  }
}

/** SPEC sections 10 and 11: scale figures. */
export const scaleBench: Bench = {
  name: 'scale',
  description: 'MetaStore operations per create/drop at 100/10k/100k segments; create on a stock etcd vs LevelDB; listSnapshots of 100 × 10k; GC reads when nothing changed; spaceReport of 100 × 10k',
  async run(ctx) {
    return [...(await metaOps(ctx)), ...(await listAndGc(ctx)), ...(await etcdCreate(ctx))]
  },
}
