import { execFile } from 'node:child_process'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import type { CopyMode } from '../../src/storage/object-store.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import { DEFAULTS } from '../../src/options.js'
import { FILE_CONCURRENCY } from '../../src/restore/copy-worker.js'
import { seedCollection, seedSegments } from '../seed.js'
import { median, result, timeMs, type Bench, type BenchContext, type BenchResult } from '../types.js'

const run = promisify(execFile)

/** Files per seeded segment (see `seedSegments`). */
const FILES_PER_SEGMENT = 10

/** What one restore round measured. */
interface RestoreRound {
  ms: number
  /** Source → target key of every copied file. */
  pairs: { from: string; to: string }[]
}

/**
 * Restores `snapshot` into a fresh collection with `copyMode` and waits for it. Resolves
 * the elapsed milliseconds, from `restoreSnapshot` to the end of `waitForRestore`.
 */
async function restoreOnce(dir: string, copyMode: CopyMode, snapshot: string, target: string): Promise<RestoreRound> {
  const manager = new SnapshotManager({
    meta: new LevelMetaStore({ location: join(dir, 'meta'), sync: false }),
    objects: new FsObjectStore({ root: join(dir, 'objects'), fsync: false }),
    gcIntervalMs: 0,
    copyMode,
  })
  await manager.open()
  try {
    await settle()
    let jobId = 0
    const ms = await timeMs(async () => {
      jobId = await manager.restoreSnapshot({ snapshotName: snapshot, targetCollectionName: target })
      await manager.waitForRestore(jobId)
    })
    const job = await manager.getRestoreState(jobId)
    if (job.copiedBytes !== job.totalBytes || job.totalBytes === 0) throw new Error(`restore copied ${job.copiedBytes} of ${job.totalBytes} bytes`)
    const source = (await manager.catalog.listSegments('bench')).sort((a, b) => a.id - b.id)
    const restored = (await manager.catalog.listSegments(target)).sort((a, b) => a.id - b.id)
    const pairs = source.flatMap((s, i) => {
      const to = [...segmentFiles(restored[i])].map((f) => f.file.key)
      return [...segmentFiles(s)].map((f, j) => ({ from: f.file.key, to: to[j] }))
    })
    return { ms, pairs }
  } finally {
    await manager.close()
  }
}

/**
 * The same copies issued straight to the adapter (`FsObjectStore.copy`, as many in
 * flight as a restore runs), to tell the restore's own cost from the adapter's.
 */
async function adapterOnce(dir: string, copyMode: CopyMode, pairs: readonly { from: string; to: string }[], prefix: string): Promise<number> {
  const objects = new FsObjectStore({ root: join(dir, 'objects'), fsync: false })
  const width = DEFAULTS.restoreConcurrency * FILE_CONCURRENCY
  await settle()
  return timeMs(async () => {
    let next = 0
    await Promise.all(
      Array.from({ length: width }, async () => {
        while (next < pairs.length) {
          const p = pairs[next++]
          await objects.copy(p.from, `${prefix}/${p.to}`, { mode: copyMode })
        }
      }),
    )
  })
}

/** Flushes dirty pages, so one measurement does not pay for the writeback of the previous one. */
async function settle(): Promise<void> {
  await run('sync')
}

/** `cp <flags> <sources…> <dest>/`; resolves milliseconds. */
async function cp(flags: string, sources: readonly string[], dest: string): Promise<number> {
  await mkdir(dest, { recursive: true })
  await settle()
  return timeMs(() => run('cp', [flags, ...sources, `${dest}/`]))
}

/**
 * SPEC section 10: restore of ~1 GiB in 1k segments (10 files each) on the filesystem,
 * byte copies vs `cp -r` and hard links vs `cp -al` of the same files.
 */
async function runFs(ctx: BenchContext): Promise<BenchResult[]> {
  const segments = ctx.quick ? 100 : 1_000
  const fileBytes = ctx.quick ? 16 * 1024 : Math.floor(1024 ** 3 / (1_000 * FILES_PER_SEGMENT))
  const rounds = ctx.quick ? 1 : 6
  const dir = await ctx.tmpDir('restore-fs')
  const root = join(dir, 'objects')
  const totalMiB = (segments * FILES_PER_SEGMENT * fileBytes) / 1024 ** 2

  // Seed (untimed): a collection with 10-file segments, written as real files, and a snapshot.
  let sources: string[]
  {
    const manager = new SnapshotManager({ meta: new LevelMetaStore({ location: join(dir, 'meta'), sync: false }), objects: new FsObjectStore({ root, fsync: false }), gcIntervalMs: 0 })
    await manager.open()
    try {
      const collection = await seedCollection(manager.catalog, { name: 'bench' })
      const t = performance.now()
      await seedSegments(manager.catalog, { collection, count: segments, fileBytes, root, onProgress: (n) => ctx.log(`  seeded ${n}/${segments}`) })
      ctx.log(`  seeded ${segments} segments, ${totalMiB.toFixed(0)} MiB in ${((performance.now() - t) / 1000).toFixed(1)} s`)
      await manager.createSnapshot({ collectionName: 'bench', snapshotName: 'snap' })
      // Exactly the snapshot's files: the collection's log directories and the seeded index files.
      const c = collection.id
      sources = [`files/insert_log/${c}`, `files/stats_log/${c}`, `files/delta_log/${c}`, 'files/index_files/seed'].map((p) => join(root, p))
    } finally {
      await manager.close()
    }
  }

  const copyMs: number[] = []
  const cpMs: number[] = []
  const linkMs: number[] = []
  const cpalMs: number[] = []
  const adapterCopyMs: number[] = []
  const adapterLinkMs: number[] = []
  const objects = new FsObjectStore({ root, fsync: false })
  // Every measurement's output is removed (untimed) before the next one starts, so each
  // writes into memory the kernel just freed: on this VM, page cache or tmpfs pages the
  // guest has not touched lately cost 2-3× more to fill, and an output left in place
  // would make whichever side runs later pay for it.
  const removeKeys = async (pairs: readonly { to: string }[]): Promise<void> => {
    const targets = pairs.map((p) => p.to)
    for (let i = 0; i < targets.length; i += 1000) await objects.delete(targets.slice(i, i + 1000))
  }
  const cpOnce = async (flags: string, dest: string): Promise<number> => {
    const ms = await cp(flags, sources, dest)
    await rm(dest, { recursive: true, force: true })
    return ms
  }
  const restoreAndAdapter = async (mode: CopyMode, round: number, into: number[], adapterInto: number[]): Promise<void> => {
    const restored = await restoreOnce(dir, mode, 'snap', `${mode}_${round}`)
    into.push(restored.ms)
    await removeKeys(restored.pairs)
    adapterInto.push(await adapterOnce(dir, mode, restored.pairs, `adapter-${mode}-${round}`))
    await rm(join(root, `adapter-${mode}-${round}`), { recursive: true, force: true })
  }
  // Warm-up (untimed): the memory the rounds will write into is touched once.
  await cpOnce('-r', join(dir, 'warm-up'))
  for (let round = 1; round <= rounds; round++) {
    // Odd rounds run the baseline first, even rounds last.
    const baselineFirst = round % 2 === 1
    if (baselineFirst) cpMs.push(await cpOnce('-r', join(dir, `cp-${round}`)))
    await restoreAndAdapter('copy', round, copyMs, adapterCopyMs)
    if (!baselineFirst) cpMs.push(await cpOnce('-r', join(dir, `cp-${round}`)))
    if (baselineFirst) cpalMs.push(await cpOnce('-al', join(dir, `cpal-${round}`)))
    await restoreAndAdapter('link', round, linkMs, adapterLinkMs)
    if (!baselineFirst) cpalMs.push(await cpOnce('-al', join(dir, `cpal-${round}`)))
    ctx.log(
      `  round ${round}: restore copy ${copyMs.at(-1)?.toFixed(0)} ms vs cp -r ${cpMs.at(-1)?.toFixed(0)} ms (adapter alone ${adapterCopyMs.at(-1)?.toFixed(0)} ms); ` +
        `restore link ${linkMs.at(-1)?.toFixed(0)} ms vs cp -al ${cpalMs.at(-1)?.toFixed(0)} ms (adapter alone ${adapterLinkMs.at(-1)?.toFixed(0)} ms)`,
    )
  }
  const copy = median(copyMs)
  return [
    result({ name: `restore-fs/copy-${segments}-segments`, value: copy, unit: 'ms', baseline: median(cpMs), maxRatio: 1.25 }),
    result({ name: `restore-fs/link-${segments}-segments`, value: median(linkMs), unit: 'ms', baseline: median(cpalMs), maxRatio: 1.5 }),
    result({ name: 'restore-fs/copy-vs-adapter-copies', value: copy, unit: 'ms', baseline: median(adapterCopyMs) }),
    result({ name: 'restore-fs/link-vs-adapter-links', value: median(linkMs), unit: 'ms', baseline: median(adapterLinkMs) }),
    result({ name: 'restore-fs/copy-throughput', value: totalMiB / (copy / 1000), unit: 'MiB/s', baseline: totalMiB / (median(cpMs) / 1000) }),
  ]
}

/** SPEC section 10: filesystem restore, copy and link modes. */
export const restoreFsBench: Bench = {
  name: 'restore-fs',
  description: 'restore of ~1 GiB in 1k segments: byte copy vs `cp -r`, hard links vs `cp -al` of the same files',
  run: runFs,
}
