/**
 * Child process of the restore RSS bench (run by bench/benches/restore-rss.ts).
 *
 *   node --expose-gc --import tsx restore-rss-child.ts seed <dir> <segments>
 *   node --expose-gc --import tsx restore-rss-child.ts restore <dir> [targetCollectionName]
 *   node --expose-gc --import tsx restore-rss-child.ts floor <dir> <width>
 *
 * `seed` writes a collection of small one-file segments (records written directly, a
 * thousand per transaction, to keep seeding fast) and snapshots it. `restore` opens the
 * same stores in a fresh process, restores the snapshot and prints, as one JSON line,
 * the RSS after open (after a GC) and the peak RSS sampled every 20 ms while it runs,
 * overall and per phase: `accept` (the `restoreSnapshot` call), `tasks` (until the job is
 * `in_progress`: the checker writes its copy tasks), `copying` (until it completed).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { link, mkdir, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { layout } from '../../src/storage/layout.js'
import { seedSegmentsDirect } from '../seed.js'

const [mode, dir, arg] = process.argv.slice(2)
const root = join(dir, 'objects')
/** What `floor` needs to know of the seeded segments (written by `seed`). */
const seededFile = join(dir, 'seeded.json')
interface Seeded {
  collectionId: number
  partitionId: number
  fieldId: number
  /** ID of the snapshot that wrote the manifests. */
  owner: number
  /** Segment IDs `first … first + count - 1`. */
  first: number
  count: number
}
// `floor` opens no stores (the modules are loaded all the same, as for `restore`).
const meta = mode === 'floor' ? undefined : new LevelMetaStore({ location: join(dir, 'meta'), sync: false })
const manager = meta === undefined ? undefined : new SnapshotManager({ meta, objects: new FsObjectStore({ root, fsync: false }), gcIntervalMs: 0 })

async function seed(segments: number): Promise<void> {
  if (manager === undefined || meta === undefined) throw new Error('no manager')
  await manager.open()
  const collection = await manager.catalog.createCollection({
    name: 'small',
    schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }, { name: 'v', dataType: 'FloatVector', dim: 4 }] },
  })
  const seeded = await seedSegmentsDirect(meta, manager.catalog, {
    collection,
    count: segments,
    perTransaction: 1000,
    objects: new FsObjectStore({ root, fsync: false }),
    onProgress: (done) => {
      if (done % 20_000 === 0) process.stderr.write(`  seeded ${done}/${segments}\n`)
    },
  })
  await manager.createSnapshot({ collectionName: 'small', snapshotName: 'snap' })
  // The first snapshot of the collection writes every manifest.
  const owner = (await manager.describeSnapshot('snap')).id
  const info: Seeded = {
    collectionId: collection.id,
    partitionId: collection.partitions[0].id,
    fieldId: collection.schema.fields[0].fieldId,
    owner,
    first: seeded[0].id,
    count: seeded.length,
  }
  if (seeded.some((s, i) => s.id !== info.first + i)) throw new Error('seeded segment IDs are not consecutive')
  writeFileSync(seededFile, JSON.stringify(info))
  await manager.close()
}

/** Resident anonymous memory (heap, malloc) in bytes, from /proc/self/status; undefined elsewhere. */
function rssAnon(): number | undefined {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('RssAnon:'))
    return line === undefined ? undefined : Number(line.replace(/\D+/g, '')) * 1024
  } catch {
    return undefined
  }
}

/** Peaks of one phase of the restore (bytes) and its duration. */
interface PhasePeak {
  ms: number
  peakRss: number
  peakHeapUsed: number
  peakHeapTotal: number
}

/**
 * Measures a run: the base after a full GC, then the peaks sampled every 20 ms, overall and
 * per phase (`enter` starts the next one); `finish` stops sampling and prints the figures,
 * with the live heap after another full GC, as one JSON line.
 */
class Sampler {
  readonly baseRss: number
  readonly baseHeapUsed: number
  readonly baseAnon: number | undefined
  peakRss: number
  peakAnon: number | undefined
  peakHeap: number
  readonly phases: Record<string, PhasePeak> = {}
  phase: string
  readonly #started = performance.now()
  #phaseStarted = performance.now()
  readonly #timer: NodeJS.Timeout

  constructor(phase: string) {
    globalThis.gc?.()
    this.baseRss = process.memoryUsage.rss()
    this.baseHeapUsed = process.memoryUsage().heapUsed
    this.baseAnon = rssAnon()
    this.peakRss = this.baseRss
    this.peakAnon = this.baseAnon
    this.peakHeap = process.memoryUsage().heapTotal
    this.phase = phase
    this.#timer = setInterval(() => this.sample(), 20)
  }

  sample(): void {
    const m = process.memoryUsage()
    this.peakRss = Math.max(this.peakRss, m.rss)
    const anon = rssAnon()
    if (anon !== undefined && this.peakAnon !== undefined) this.peakAnon = Math.max(this.peakAnon, anon)
    this.peakHeap = Math.max(this.peakHeap, m.heapTotal)
    const p = (this.phases[this.phase] ??= { ms: 0, peakRss: 0, peakHeapUsed: 0, peakHeapTotal: 0 })
    p.ms = performance.now() - this.#phaseStarted
    p.peakRss = Math.max(p.peakRss, m.rss)
    p.peakHeapUsed = Math.max(p.peakHeapUsed, m.heapUsed)
    p.peakHeapTotal = Math.max(p.peakHeapTotal, m.heapTotal)
  }

  enter(next: string): void {
    if (next === this.phase) return
    this.sample()
    this.phase = next
    this.#phaseStarted = performance.now()
    this.sample()
  }

  /** Stops sampling; `close` runs after the live-heap measure (it may free what the run kept). */
  async finish(outcome: { segments: number; state: string }, close?: () => Promise<void>): Promise<void> {
    const ms = performance.now() - this.#started
    clearInterval(this.#timer)
    this.sample()
    globalThis.gc?.()
    const liveHeapAfter = process.memoryUsage().heapUsed
    await close?.()
    const { baseRss, peakRss, baseAnon, peakAnon, peakHeap, baseHeapUsed, phases } = this
    process.stdout.write(`${JSON.stringify({ baseRss, peakRss, baseAnon, peakAnon, peakHeap, baseHeapUsed, liveHeapAfter, ms, ...outcome, phases })}\n`)
  }
}

async function restore(): Promise<void> {
  if (manager === undefined) throw new Error('no manager')
  await manager.open()
  const sampler = new Sampler('accept')
  // The job reports `in_progress` once its tasks are written (throttled events; the first comes at once).
  manager.on('restoreProgress', (info) => {
    if (info.state === 'in_progress' && sampler.phase === 'tasks') sampler.enter('copying')
  })
  const jobId = await manager.restoreSnapshot({ snapshotName: 'snap', targetCollectionName: arg ?? 'restored' })
  sampler.enter('tasks')
  const job = await manager.waitForRestore(jobId)
  await sampler.finish({ segments: job.totalSegments, state: job.state }, () => manager.close())
}

/** The bare file-system loop (see the header); prints the same figures as `restore`. */
async function floor(width: number): Promise<void> {
  const s = JSON.parse(readFileSync(seededFile, 'utf8')) as Seeded
  const key = (collectionId: number, segmentId: number): string =>
    layout.insertLog({ collectionId, partitionId: s.partitionId, segmentId, fieldId: s.fieldId, logId: 1 })
  // A collection ID no restore uses, so the floor's links never meet a restore's.
  const target = s.collectionId + 1_000_000
  const sampler = new Sampler('copying')
  let next = 0
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < s.count) {
        const segmentId = s.first + next++
        await readFile(join(root, layout.snapshotManifest(s.collectionId, s.owner, segmentId)))
        const to = join(root, key(target, segmentId))
        await mkdir(dirname(to), { recursive: true })
        await link(join(root, key(s.collectionId, segmentId)), to)
        await stat(to)
      }
    }),
  )
  await sampler.finish({ segments: s.count, state: 'completed' })
}

if (mode === 'seed') await seed(Number(arg))
else if (mode === 'restore') await restore()
else if (mode === 'floor') await floor(Number(arg))
else throw new TypeError(`Unknown mode \`${mode}\``)
