import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import type { MetaStore } from '../../src/meta/meta-store.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import type { AbortOptions } from '../../src/types.js'
import { seedCollection, seedSegments } from '../seed.js'
import { median, result, timeMs, type Bench, type BenchContext, type BenchResult } from '../types.js'

/** Same write concurrency as the snapshot store's manifest writer. */
const BASELINE_CONCURRENCY = 16

/**
 * Counts manifest puts going through the manager, and (while `keepObjects` is set) turns
 * deletes into no-ops, so that resetting between rounds removes no files (see `runOne`).
 */
class PutCounter {
  manifests = 0
  keepObjects = false
  wrap(inner: ObjectStore): ObjectStore {
    const self = this
    return {
      get capabilities() {
        return inner.capabilities
      },
      get: (k: string, o?: AbortOptions) => inner.get(k, o),
      head: (k: string, o?: AbortOptions) => inner.head(k, o),
      list: (p: string, o?: AbortOptions) => inner.list(p, o),
      copy: (a: string, b: string, o?: AbortOptions) => inner.copy(a, b, o),
      delete: async (k: readonly string[], o?: AbortOptions) => {
        if (!self.keepObjects) await inner.delete(k, o)
      },
      put(k: string, body: Uint8Array, o?: AbortOptions) {
        if (k.endsWith('.avro')) self.manifests++
        return inner.put(k, body, o)
      },
    }
  }
}

/** Writes `files` as plain files under `root` with fs.writeFile, `BASELINE_CONCURRENCY` at a time. */
async function writePlain(root: string, files: readonly { key: string; bytes: Uint8Array }[]): Promise<void> {
  const dirs = new Set(files.map((f) => dirname(join(root, f.key))))
  await Promise.all([...dirs].map((d) => mkdir(d, { recursive: true })))
  let next = 0
  await Promise.all(
    Array.from({ length: BASELINE_CONCURRENCY }, async () => {
      while (next < files.length) {
        const f = files[next++]
        await writeFile(join(root, f.key), f.bytes)
      }
    }),
  )
}

async function runOne(ctx: BenchContext, metaKind: 'memory' | 'level'): Promise<BenchResult[]> {
  const segments = ctx.quick ? 1_000 : 10_000
  const added = ctx.quick ? 10 : 100
  const rounds = ctx.quick ? 2 : 5
  const dir = await ctx.tmpDir(`create-${metaKind}`)
  const counter = new PutCounter()
  const meta: MetaStore = metaKind === 'level' ? new LevelMetaStore({ location: join(dir, 'meta'), sync: false }) : new MemoryMetaStore()
  const objects = counter.wrap(new FsObjectStore({ root: join(dir, 'objects'), fsync: false }))
  const manager = new SnapshotManager({ meta, objects, gcIntervalMs: 0 })
  await manager.open()
  try {
    const collection = await seedCollection(manager.catalog, { name: 'bench' })
    let t = performance.now()
    await seedSegments(manager.catalog, { collection, count: segments, onProgress: (n) => ctx.log(`  seeded ${n}/${segments}`) })
    ctx.log(`  [${metaKind}] seeded ${segments} segments in ${((performance.now() - t) / 1000).toFixed(1)} s`)

    // Each round writes the same manifests twice: through createSnapshot (then
    // dropSnapshot, so that the next create does not reuse them) and as plain files,
    // alternating which goes first, each into a directory of its own. Nothing is deleted
    // until the end: on a disk mounted with `discard` (like this project's VMs), creating
    // files right after deleting thousands is several times slower for seconds, and
    // whichever side followed a delete paid for it (10k plain writes took 0.3–7 s).
    // Each timed side starts with the previous side's writeback done (`sync`, untimed): the side
    // that ran second paid for the first one's 10k files being flushed.
    const settle = (): void => {
      execFileSync('sync')
    }
    const createMs: number[] = []
    const plainMs: number[] = []
    let files: { key: string; bytes: Uint8Array }[] = []
    const create = async (round: number): Promise<void> => {
      const name = `round-${round}`
      counter.manifests = 0
      settle()
      createMs.push(await timeMs(() => manager.createSnapshot({ collectionName: 'bench', snapshotName: name })))
      const written = counter.manifests
      if (files.length === 0) {
        // The same manifest bytes, read back untimed.
        const info = await manager.describeSnapshot(name)
        for await (const obj of objects.list(`snapshots/${info.collectionId}/manifests/${info.id}/`)) {
          files.push({ key: obj.key, bytes: (await objects.get(obj.key)) as Uint8Array })
        }
      }
      if (written !== segments || files.length !== segments) throw new Error(`expected ${segments} manifests, wrote ${written}, read ${files.length}`)
      if (round < rounds) {
        counter.keepObjects = true
        await manager.dropSnapshot(name)
        counter.keepObjects = false
      }
    }
    const plain = async (round: number): Promise<void> => {
      const root = join(dir, `plain-${round}`)
      settle()
      plainMs.push(await timeMs(() => writePlain(root, files)))
    }
    for (let round = 1; round <= rounds; round++) {
      if (round % 2 === 1 || files.length === 0) {
        await create(round)
        await plain(round)
      } else {
        await plain(round)
        await create(round)
      }
      ctx.log(`  [${metaKind}] round ${round}: create ${createMs.at(-1)?.toFixed(0)} ms, plain write ${plainMs.at(-1)?.toFixed(0)} ms`)
    }

    t = performance.now()
    await seedSegments(manager.catalog, { collection, count: added })
    ctx.log(`  [${metaKind}] added ${added} segments in ${(performance.now() - t).toFixed(0)} ms`)
    counter.manifests = 0
    const secondMs = await timeMs(() => manager.createSnapshot({ collectionName: 'bench', snapshotName: 'second' }))
    const second = await manager.describeSnapshot('second')
    if (second.segmentCount !== segments + added) throw new Error(`second snapshot has ${second.segmentCount} segments`)

    const prefix = `create-snapshot/${metaKind}`
    return [
      result({ name: `${prefix}/create-${segments}-segments`, value: median(createMs), unit: 'ms', baseline: median(plainMs), maxRatio: 1.3 }),
      result({ name: `${prefix}/second-snapshot-manifests-written`, value: counter.manifests, unit: 'count', baseline: added, maxValue: added }),
      result({ name: `${prefix}/second-snapshot-time`, value: secondMs, unit: 'ms', baseline: median(createMs) }),
    ]
  } finally {
    await manager.close()
  }
}

/** SPEC section 10: create snapshot, 10k flushed segments, ≤ 1.3× writing the same manifest bytes as plain files (LevelDB and memory). */
export const createSnapshotBench: Bench = {
  name: 'create-snapshot',
  description: 'createSnapshot over 10k flushed segments vs fs.writeFile of the same manifests; reuse on a second snapshot',
  async run(ctx) {
    const out: BenchResult[] = []
    for (const kind of ['memory', 'level'] as const) out.push(...(await runOne(ctx, kind)))
    return out
  },
}
