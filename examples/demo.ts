/**
 * `npm run demo`: vecsnap end to end on a small but real vector database
 * (examples/tiny-vector-db). Creates a collection, inserts random vectors in several
 * flushes, builds HNSW indexes, runs fixed queries; snapshots the collection; keeps
 * writing, deletes rows, compacts and runs GC with zero grace; restores the snapshot into
 * a new collection with a live progress bar; checks that the same queries return exactly
 * the snapshot-time results (PASS/FAIL, non-zero exit on FAIL); prints a timing table
 * against re-inserting and re-indexing the same data.
 *
 * Flags: see examples/demo/args.ts or `npm run demo -- --help`.
 */
import { rm } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { SnapshotManager } from '../src/index.js'
import type { RestoreJobInfo, SnapshotInfo } from '../src/index.js'
import { TinyVectorDb } from './tiny-vector-db/index.js'
import { USAGE, parseDemoArgs, type DemoArgs } from './demo/args.js'
import { randomVectors, rowsOf, sequentialIds } from './demo/data.js'
import { restoreProgressView } from './demo/progress.js'
import { differingQueries, formatHits, ms, textTable, type QueryResults } from './demo/report.js'
import { fsStores, s3Stores } from './demo/stores.js'

const SOURCE = 'products'
const RESTORED = 'products_restored'
const REBUILT = 'products_rebuilt'
const SNAPSHOT = 'products_snap_1'
const SEED = 42

function step(text: string): void {
  console.log(`\n▶ ${text}`)
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now()
  const value = await fn()
  return [value, performance.now() - started]
}

/** Inserts `vectors` (ids `firstId…`) in `flushes` equal batches, flushing after each. */
async function ingest(db: TinyVectorDb, name: string, vectors: Float32Array, dim: number, firstId: number, flushes: number): Promise<void> {
  const rows = vectors.length / dim
  for (let f = 0; f < flushes; f++) {
    const from = Math.floor((rows * f) / flushes)
    const to = Math.floor((rows * (f + 1)) / flushes)
    await db.insert(name, sequentialIds(firstId + from, to - from), rowsOf(vectors, dim, from, to))
    await db.flush(name)
  }
}

async function runQueries(db: TinyVectorDb, name: string, queries: Float32Array, dim: number, k: number): Promise<QueryResults> {
  const out: QueryResults = []
  for (let q = 0; q < queries.length / dim; q++) out.push(await db.search(name, rowsOf(queries, dim, q, q + 1), k))
  return out
}

async function demo(args: DemoArgs, dir: string): Promise<boolean> {
  const { rows, dim, flushes, k } = args
  const stores = args.s3 ? await s3Stores(dir) : await fsStores(dir)
  const manager = new SnapshotManager({
    meta: stores.meta,
    objects: stores.objects,
    // GC runs when the demo asks, with zero grace; restore ticks fast.
    gcIntervalMs: 0,
    dropGraceMs: 0,
    orphanGraceMs: 0,
    checkIntervalMs: 50,
    progressThrottleMs: 50,
  })
  await manager.open()
  const db = new TinyVectorDb({ catalog: manager.catalog, objects: stores.objects })
  try {
    console.log(`vecsnap demo: ${rows} rows × ${dim}-d in ${flushes} flushes, ${args.queries} queries, top-${k}`)
    console.log(`data: ${stores.where}`)

    step(`create collection ${SOURCE} and insert ${rows} rows in ${flushes} flushes`)
    const vectors = randomVectors(rows, dim, SEED)
    const queries = randomVectors(args.queries, dim, SEED + 1)
    await db.createCollection(SOURCE, { dim, description: 'tiny-vector-db demo' })
    const [, ingestMs] = await timed(() => ingest(db, SOURCE, vectors, dim, 1, flushes))
    console.log(`  ${flushes} segments flushed as binlogs in ${ms(ingestMs)}`)
    const [, indexMs] = await timed(() => db.createIndex(SOURCE, { M: 16 }))
    console.log(`  HNSW index built for every segment in ${ms(indexMs)}`)

    step(`run ${args.queries} fixed queries and remember the results`)
    const before = await runQueries(db, SOURCE, queries, dim, k)
    console.log(`  query 0: ${formatHits(before[0])}`)

    step(`create snapshot ${SNAPSHOT}`)
    const [snapshot, snapshotMs] = await timed<SnapshotInfo>(() => manager.createSnapshot({ collectionName: SOURCE, snapshotName: SNAPSHOT, description: 'before the cleanup' }))
    console.log(`  ${snapshot.segmentCount} segments, ${snapshot.rowCount} rows, ${(snapshot.sizeBytes / 1048576).toFixed(1)} MiB pinned in ${ms(snapshotMs)} (metadata only)`)

    step('keep writing: insert more rows, delete rows that existed at snapshot time, compact, GC')
    const segmentRows = Math.ceil(rows / flushes)
    const extra = Math.max(1, Math.floor(segmentRows / 2))
    await ingest(db, SOURCE, randomVectors(2 * extra, dim, SEED + 2), dim, rows + 1, 2)
    const doomed = new Set<bigint>(before.map((hits) => hits[0].id))
    for (let id = 1; id <= Math.floor(segmentRows / 2); id++) doomed.add(BigInt(id))
    const deleted = await db.delete(SOURCE, [...doomed])
    const compactions = await db.compact(SOURCE, { maxRows: segmentRows })
    const gc = await manager.runGc()
    const live = await db.stats(SOURCE)
    console.log(`  inserted ${2 * extra} rows in 2 flushes, deleted ${deleted} rows (incl. every query's best hit)`)
    console.log(`  compaction merged ${compactions.map((c) => `[${c.sources.join('+')}]→${c.segmentId}`).join(', ') || 'nothing'}, purging ${compactions.reduce((n, c) => n + c.purgedRows, 0)} deleted rows`)
    console.log(`  GC deleted ${gc.deletedObjects} objects (${(gc.deletedBytes / 1048576).toFixed(1)} MiB), kept ${gc.keptForSnapshots} for the snapshot`)
    const drift = differingQueries(before, await runQueries(db, SOURCE, queries, dim, k))
    console.log(`  ${SOURCE} now: ${live.segments} segments, ${live.liveRows} live rows; ${drift.length}/${args.queries} queries answer differently than at snapshot time`)

    step(`verify snapshot ${SNAPSHOT} (every file it pins still exists, sizes and sha256 match)`)
    const verify = await manager.verifySnapshot(SNAPSHOT)
    console.log(`  ${verify.ok ? 'ok' : 'NOT ok'}: ${verify.checkedFiles} files checked, ${verify.missing.length} missing, ${verify.corrupt.length} corrupt`)

    step(`restore ${SNAPSHOT} into ${RESTORED}`)
    const view = restoreProgressView('restore')
    const [job, restoreMs] = await timed<RestoreJobInfo>(async () => {
      const jobId = await manager.restoreSnapshot({ snapshotName: SNAPSHOT, targetCollectionName: RESTORED })
      try {
        return await manager.waitForRestore(jobId, { onProgress: (j) => view.update(j) })
      } finally {
        view.stop()
      }
    })
    console.log(`  job ${job.jobId} ${job.state}: ${job.totalSegments} segments, ${(job.totalBytes / 1048576).toFixed(1)} MiB copied without re-reading a row`)

    step(`run the same queries on ${RESTORED}`)
    const after = await runQueries(db, RESTORED, queries, dim, k)
    console.log(`  query 0: ${formatHits(after[0])}`)
    const restoredStats = await db.stats(RESTORED)

    step(`baseline: re-insert and re-index the same ${rows} rows into ${REBUILT}`)
    await db.createCollection(REBUILT, { dim })
    const [, rebuildMs] = await timed(async () => {
      await ingest(db, REBUILT, vectors, dim, 1, flushes)
      await db.createIndex(REBUILT, { M: 16 })
    })
    console.log(`  done in ${ms(rebuildMs)}`)

    const mismatched = differingQueries(before, after)
    const rowsMatch = restoredStats.liveRows === snapshot.rowCount
    const pass = mismatched.length === 0 && rowsMatch && verify.ok && job.state === 'completed'

    console.log('\n' + textTable(
      ['timings', 'time', 'vs restore'],
      [
        [`snapshot create (${snapshot.segmentCount} segments, metadata only)`, ms(snapshotMs), '-'],
        [`restore (${job.totalSegments} segments, ${(job.totalBytes / 1048576).toFixed(1)} MiB, ${args.s3 ? 's3 server-side copy' : 'fs hard links'})`, ms(restoreMs), '1.0×'],
        [`re-insert + re-index (${rows} rows, HNSW M=16)`, ms(rebuildMs), `${(rebuildMs / restoreMs).toFixed(1)}×`],
      ],
    ))
    console.log(`\nrestored collection: ${restoredStats.liveRows} rows (snapshot: ${snapshot.rowCount})${rowsMatch ? '' : '  ← MISMATCH'}`)
    if (mismatched.length > 0) {
      for (const q of mismatched.slice(0, 3)) console.log(`  query ${q}: at snapshot ${formatHits(before[q])}\n           restored    ${formatHits(after[q])}`)
    }
    console.log(
      pass
        ? `\nPASS: all ${args.queries} queries on ${RESTORED} return exactly the snapshot-time ids and distances`
        : `\nFAIL: ${mismatched.length}/${args.queries} queries differ${verify.ok ? '' : ', snapshot verification failed'}${rowsMatch ? '' : ', row count differs'}`,
    )
    return pass
  } finally {
    db.close()
    await manager.close()
    await stores.stop()
  }
}

async function main(): Promise<void> {
  const parsed = parseDemoArgs(process.argv.slice(2))
  if (parsed === 'help') {
    console.log(USAGE)
    return
  }
  const dir = resolve(parsed.dir ?? join('demo-data', new Date().toISOString().replace(/[:.]/g, '-')))
  let pass = false
  try {
    pass = await demo(parsed, dir)
  } finally {
    if (parsed.keep) {
      const shown = relative(process.cwd(), dir) || '.'
      if (parsed.s3) {
        console.log(`\nkept ${shown} (metadata in ${shown}/meta, objects in ${shown}/s3rver; the demo's S3 server has stopped)`)
      } else {
        console.log(`\nkept ${shown}; look around with the CLI (after \`npm run build\`, or with \`npx tsx src/cli/vecsnap.ts\` in its place):`)
        for (const cmd of ['collections', 'snapshots', 'describe products_snap_1 --collection-info', 'jobs']) console.log(`  node dist/cli/vecsnap.js --data ${shown} ${cmd}`)
      }
    } else {
      await rm(dir, { recursive: true, force: true })
    }
  }
  if (!pass) process.exitCode = 1
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
