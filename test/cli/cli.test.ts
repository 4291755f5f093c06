import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FsObjectStore, LevelMetaStore, SnapshotManager } from '../../src/index.js'
import type { CollectionInfo, GcReport, RestoreJobInfo, SegmentInfo, SnapshotDescription, SnapshotInfo, SpaceReport, VerifyReport } from '../../src/index.js'
import { TinyVectorDb } from '../../examples/tiny-vector-db/index.js'
import { randomVectors, rowsOf, sequentialIds } from '../../examples/demo/data.js'
import { ensureBuilt, json, vecsnap } from './helpers.js'

/**
 * The built `vecsnap` binary against a data directory made by the demo database
 * (examples/tiny-vector-db): every command, `--json` parsed, error exit codes, and a
 * restore whose files match the snapshot's byte for byte.
 */

const DIM = 8
const ROWS = 300
const FLUSHES = 3

let dir: string

/** Runs `fn` with the demo database open over the data directory, then closes it (LevelDB allows one process). */
async function withDb<T>(fn: (db: TinyVectorDb, manager: SnapshotManager, objects: FsObjectStore) => Promise<T>): Promise<T> {
  const objects = new FsObjectStore({ root: join(dir, 'objects') })
  const manager = new SnapshotManager({ meta: new LevelMetaStore({ location: join(dir, 'meta') }), objects, gcIntervalMs: 0 })
  await manager.open()
  const db = new TinyVectorDb({ catalog: manager.catalog, objects })
  try {
    return await fn(db, manager, objects)
  } finally {
    db.close()
    await manager.close()
  }
}

const sha = (bytes: Uint8Array | undefined): string => createHash('sha256').update(bytes ?? new Uint8Array()).digest('hex')

/** Every file of a segment as `class/field-or-index/basename → sha256 of its bytes`. */
async function fileDigests(objects: FsObjectStore, s: SegmentInfo): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const lists = { binlog: s.binlogs, statslog: s.statslogs, deltalog: s.deltalogs } as const
  for (const [cls, list] of Object.entries(lists)) {
    for (const fb of list) for (const f of fb.files) out[`${cls}/${fb.fieldId}/${f.logId}`] = sha(await objects.get(f.key))
  }
  for (const b of s.indexes) for (const f of b.files) out[`index/${b.indexId}/${f.key.slice(f.key.lastIndexOf('/') + 1)}`] = sha(await objects.get(f.key))
  return out
}

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'vecsnap-cli-'))
  await withDb(async (db) => {
    await db.createCollection('docs', { dim: DIM })
    const vectors = randomVectors(ROWS, DIM, 7)
    for (let f = 0; f < FLUSHES; f++) {
      const from = (ROWS / FLUSHES) * f
      const to = (ROWS / FLUSHES) * (f + 1)
      await db.insert('docs', sequentialIds(1 + from, to - from), rowsOf(vectors, DIM, from, to))
      await db.flush('docs')
    }
    await db.createIndex('docs')
  })
}, 180_000)

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

// Each test spawns the binary a few times (~0.3 s each on an idle machine); allow for a busy one.
describe('vecsnap CLI (built binary, --data)', { timeout: 90_000 }, () => {
  it('lists collections', async () => {
    const list = await json<(CollectionInfo & { segmentCount: number; rowCount: number })[]>(dir, 'collections')
    expect(list.map((c) => [c.name, c.segmentCount, c.rowCount])).toEqual([['docs', FLUSHES, ROWS]])
    expect(list[0].schema.fields.map((f) => [f.name, f.fieldId])).toEqual([['id', 100], ['vector', 101]])
    const text = await vecsnap(['--data', dir, 'collections'])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^docs\s+\d+\s+id:Int64 vector:FloatVector\(8\)/m)
  })

  it('creates, lists and describes a snapshot', async () => {
    const created = await json<SnapshotInfo>(dir, 'create', 'docs', 'snap1', '-d', 'first one')
    expect(created).toMatchObject({ name: 'snap1', collectionName: 'docs', description: 'first one', state: 'committed', segmentCount: FLUSHES, rowCount: ROWS })
    expect(created.sizeBytes).toBeGreaterThan(ROWS * DIM * 4)

    expect((await json<SnapshotInfo[]>(dir, 'snapshots')).map((s) => s.name)).toEqual(['snap1'])
    expect((await json<SnapshotInfo[]>(dir, 'snapshots', 'docs')).map((s) => s.name)).toEqual(['snap1'])
    expect(await json<SnapshotInfo[]>(dir, 'snapshots', 'other')).toEqual([])

    const plain = await json<SnapshotDescription>(dir, 'describe', 'snap1')
    expect(plain.collection).toBeUndefined()
    const full = await json<SnapshotDescription>(dir, 'describe', 'snap1', '--collection-info')
    expect(full).toMatchObject({ id: created.id, rowCount: ROWS })
    expect(full.collection?.schema.fields.map((f) => f.fieldId)).toEqual([100, 101])
    expect(full.indexes?.map((i) => [i.name, i.fieldId, i.params.index_type])).toEqual([['vector_hnsw', 101, 'HNSW']])

    const text = await vecsnap(['--data', dir, 'describe', 'snap1', '--collection-info'])
    expect(text.stdout).toMatch(/snapshot:\s+snap1/)
    expect(text.stdout).toMatch(/vector_hnsw/)
  })

  it('holds and releases a snapshot; a held snapshot cannot be dropped', async () => {
    await json(dir, 'create', 'docs', 'held')
    expect(await json(dir, 'hold', 'held', 'legal')).toEqual({ held: 'held', tag: 'legal', ttlMs: null })
    expect((await json<SnapshotInfo[]>(dir, 'snapshots')).find((s) => s.name === 'held')?.holds).toEqual([{ tag: 'legal' }])
    const refused = await vecsnap(['--data', dir, 'drop', 'held'])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/IN_USE.*legal/s)
    expect((await vecsnap(['--data', dir, 'snapshots'])).stdout).toMatch(/held\b.*legal/)
    expect(await json(dir, 'release', 'held', 'legal')).toEqual({ released: 'held', tag: 'legal' })
    await json(dir, 'drop', 'held')
  })

  it('du reports space per collection and snapshot, from metadata', async () => {
    const report = await json<SpaceReport>(dir, 'du', 'docs')
    expect(report.collections).toEqual([expect.objectContaining({ name: 'docs', snapshotOnlyBytes: 0 })])
    expect(report.collections[0].liveBytes).toBeGreaterThan(ROWS * DIM * 4)
    const snap1 = report.snapshots.find((s) => s.name === 'snap1')
    expect(snap1).toMatchObject({ collectionName: 'docs', exclusiveBytes: 0 })
    expect(snap1?.referencedBytes).toBe(snap1?.writtenBytes)
    const text = await vecsnap(['--data', dir, 'du'])
    expect(text.stdout).toMatch(/collection\s+live\s+snapshot-only/)
    expect(text.stdout).toMatch(/snap1\s+docs\s+\S+/)
    const missing = await vecsnap(['--data', dir, 'du', 'nope'])
    expect(missing.code).not.toBe(0)
    expect(missing.stderr).toMatch(/NOT_FOUND/)
  })

  it('explain tells why GC keeps a file', async () => {
    const segs = await withDb(async (_db, manager) => manager.catalog.listSegments('docs'))
    const key = segs[0].binlogs[0].files[0].key
    expect(await json(dir, 'explain', key)).toMatchObject({ key, exists: true, verdict: 'live', reasons: [{ kind: 'segment', id: segs[0].id }] })
    expect((await vecsnap(['--data', dir, 'explain', key])).stdout).toMatch(/: live \(/)
    const bad = await vecsnap(['--data', dir, 'explain', 'elsewhere/x'])
    expect(bad.stderr).toMatch(/INVALID_ARGUMENT/)
  })

  it('verifies a healthy snapshot with exit 0', async () => {
    const report = await json<VerifyReport>(dir, 'verify', 'snap1')
    expect(report).toEqual({ ok: true, checkedFiles: FLUSHES * 4, missing: [], corrupt: [] })
  })

  it('restores with the job running in the CLI process; the files match the snapshot byte for byte', async () => {
    const job = await json<RestoreJobInfo>(dir, 'restore', 'snap1', 'docs_copy')
    expect(job).toMatchObject({ snapshotName: 'snap1', targetCollectionName: 'docs_copy', state: 'completed', progress: 100, copiedSegments: FLUSHES, totalSegments: FLUSHES })
    expect(job.copiedBytes).toBe(job.totalBytes)

    await withDb(async (db, manager, objects) => {
      const target = await manager.catalog.getCollection('docs_copy')
      expect(target.id).toBe(job.collectionId)
      const source = await manager.catalog.listSegments('docs', { states: ['flushed'] })
      const restored = await manager.catalog.listSegments('docs_copy', { states: ['flushed'] })
      expect(restored).toHaveLength(source.length)
      // Pair segments by the bytes of their primary-key binlog, then compare every file.
      const byPk = async (s: SegmentInfo): Promise<string> => sha(await objects.get(s.binlogs.find((b) => b.fieldId === 100)!.files[0].key))
      const sources = new Map<string, SegmentInfo>()
      for (const s of source) sources.set(await byPk(s), s)
      for (const r of restored) {
        const s = sources.get(await byPk(r))
        expect(s, `restored segment ${r.id} matches no source segment`).toBeDefined()
        expect(r.numRows).toBe(s!.numRows)
        expect(await fileDigests(objects, r)).toEqual(await fileDigests(objects, s!))
        // The restored files live under keys built from the target's IDs.
        for (const fb of r.binlogs) {
          for (const f of fb.files) {
            expect(f.key).toBe(manager.catalog.layout.insertLog({ collectionId: target.id, partitionId: r.partitionId, segmentId: r.id, fieldId: fb.fieldId, logId: f.logId! }))
          }
        }
      }
      // And the restored collection answers queries exactly like the source.
      const queries = randomVectors(5, DIM, 99)
      for (let q = 0; q < 5; q++) {
        const query = rowsOf(queries, DIM, q, q + 1)
        expect(await db.search('docs_copy', query, 5)).toEqual(await db.search('docs', query, 5))
      }
    })
  })

  it('lists and shows restore jobs', async () => {
    const jobs = await json<RestoreJobInfo[]>(dir, 'jobs')
    expect(jobs.map((j) => [j.targetCollectionName, j.state])).toEqual([['docs_copy', 'completed']])
    expect(await json<RestoreJobInfo[]>(dir, 'jobs', 'nothing_here')).toEqual([])
    const one = await json<RestoreJobInfo>(dir, 'job', String(jobs[0].jobId))
    expect(one).toMatchObject({ jobId: jobs[0].jobId, state: 'completed' })
    const text = await vecsnap(['--data', dir, 'jobs'])
    expect(text.stdout).toMatch(/docs_copy\s+completed\s+100%/)
  })

  it('restore --no-wait returns the job at once; it resumes in a later process (job --wait)', async () => {
    const started = await json<RestoreJobInfo>(dir, 'restore', 'snap1', 'docs_later', '--no-wait')
    expect(started.targetCollectionName).toBe('docs_later')
    expect(['pending', 'in_progress', 'completed']).toContain(started.state)
    const done = await json<RestoreJobInfo>(dir, 'job', String(started.jobId), '--wait')
    expect(done).toMatchObject({ jobId: started.jobId, state: 'completed', copiedSegments: FLUSHES })
    expect((await json<CollectionInfo[]>(dir, 'collections')).map((c) => c.name).sort()).toEqual(['docs', 'docs_copy', 'docs_later'])
  })

  it('cancel leaves a job finished: cancelled and rolled back, or already completed', async () => {
    const started = await json<RestoreJobInfo>(dir, 'restore', 'snap1', 'docs_cancel', '--no-wait')
    const after = await json<RestoreJobInfo>(dir, 'cancel', String(started.jobId))
    // The job may win the race against the cancel (a finished job is left as it is).
    expect(['cancelled', 'completed']).toContain(after.state)
    const names = (await json<CollectionInfo[]>(dir, 'collections')).map((c) => c.name)
    expect(names.includes('docs_cancel')).toBe(after.state === 'completed')
    const again = await json<RestoreJobInfo>(dir, 'cancel', String(started.jobId))
    expect(again.state).toBe(after.state)
  })

  it('gc --dry-run deletes nothing; gc with zero grace keeps what the snapshot needs', async () => {
    await withDb(async (db) => {
      await db.delete('docs', [1n, 2n, 3n])
      await db.compact('docs', { maxRows: ROWS })
    })
    const dry = await json<GcReport>(dir, 'gc', '--dry-run', '--drop-grace-ms', '0', '--orphan-grace-ms', '0')
    expect(dry.dryRun).toBe(true)
    const real = await json<GcReport>(dir, 'gc', '--drop-grace-ms', '0', '--orphan-grace-ms', '0')
    expect(real).toMatchObject({ dryRun: false, deletedObjects: dry.deletedObjects })
    expect(real.keptForSnapshots).toBeGreaterThan(0)
    expect(await json<VerifyReport>(dir, 'verify', 'snap1')).toMatchObject({ ok: true })
    const text = await vecsnap(['--data', dir, 'gc', '--dry-run'])
    expect(text.stdout).toMatch(/^dry run: would delete \d+ objects/)
  })

  it('exits 2 with "error <CODE>: message" on vecsnap errors', async () => {
    const cases: [string[], string][] = [
      [['describe', 'nope'], 'NOT_FOUND'],
      [['verify', 'nope'], 'NOT_FOUND'],
      [['create', 'missing', 'snap2'], 'NOT_FOUND'],
      [['create', 'docs', 'snap1'], 'ALREADY_EXISTS'],
      [['create', 'docs', 'bad/name'], 'INVALID_ARGUMENT'],
      [['restore', 'nope', 'x'], 'NOT_FOUND'],
      [['restore', 'snap1', 'docs'], 'ALREADY_EXISTS'],
      [['job', '987654'], 'NOT_FOUND'],
      [['cancel', '987654'], 'NOT_FOUND'],
    ]
    // Each case once, the first two with --json as well (stderr stays text, stdout empty).
    for (const [i, [args, code]] of cases.entries()) {
      for (const flags of i < 2 ? [[], ['--json']] : [[]]) {
        const r = await vecsnap(['--data', dir, ...flags, ...args])
        expect(r.code, `${args.join(' ')} ${flags.join(' ')}`).toBe(2)
        expect(r.stderr).toMatch(new RegExp(`^error ${code}: `, 'm'))
        expect(r.stdout).toBe('')
      }
    }
  })

  it('exits 2 without a usable data location and 1 on bad usage', async () => {
    const noData = await vecsnap(['snapshots'])
    expect(noData.code).toBe(2)
    expect(noData.stderr).toMatch(/^error INVALID_ARGUMENT: .*--data/m)
    const missing = await vecsnap(['--data', join(dir, 'does-not-exist'), 'snapshots'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/^error NOT_FOUND: data directory not found/m)
    const fromEnv = await vecsnap(['--json', 'snapshots'], { VECSNAP_DATA: dir })
    expect(fromEnv.code).toBe(0)
    expect(JSON.parse(fromEnv.stdout)).toHaveLength(1)
    const usage = await vecsnap(['--data', dir, 'frobnicate'])
    expect(usage.code).toBe(1)
    expect(usage.stderr).toMatch(/^error USAGE: unknown command 'frobnicate'/m)
    const help = await vecsnap(['--help'])
    expect(help.code).toBe(0)
    for (const cmd of ['collections', 'snapshots', 'create', 'describe', 'drop', 'restore', 'jobs', 'job', 'cancel', 'gc', 'verify']) expect(help.stdout).toContain(cmd)
  })

  it('verify exits 3 and names a corrupt file', async () => {
    // A vector binlog of docs' first segment, which the snapshot pins (compaction merged it away; GC kept it).
    const sourceKey = await withDb(async (_db, manager, objects) => {
      const docs = await manager.catalog.getCollection('docs')
      const keys: string[] = []
      for await (const o of objects.list(`files/insert_log/${docs.id}/`)) if (o.key.split('/')[5] === '101') keys.push(o.key)
      keys.sort((a, b) => Number(a.split('/')[4]) - Number(b.split('/')[4]))
      return keys[0]
    })
    // Restored files may be hard links of the same inode: replace the source's path only.
    const path = join(dir, 'objects', sourceKey)
    const bytes = await readFile(path)
    bytes[0] ^= 0xff
    await writeFile(`${path}.tmp`, bytes)
    await rename(`${path}.tmp`, path)
    const r = await vecsnap(['--data', dir, '--json', 'verify', 'snap1'])
    expect(r.code).toBe(3)
    const report = JSON.parse(r.stdout) as VerifyReport
    expect(report).toMatchObject({ ok: false, missing: [], corrupt: [sourceKey] })
    const text = await vecsnap(['--data', dir, 'verify', 'snap1'])
    expect(text.code).toBe(3)
    expect(text.stdout).toContain(`corrupt  ${sourceKey}`)
  })

  it('drops a snapshot (idempotent)', async () => {
    expect(await json(dir, 'drop', 'snap1')).toEqual({ dropped: 'snap1' })
    expect(await json(dir, 'drop', 'snap1')).toEqual({ dropped: 'snap1' })
    expect(await json<SnapshotInfo[]>(dir, 'snapshots')).toEqual([])
  })
})
