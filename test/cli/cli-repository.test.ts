import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FsObjectStore, LevelMetaStore } from '../../src/index.js'
import type { ExportReport, PruneReport, RepositorySnapshotInfo, SnapshotInfo, VerifyReport } from '../../src/index.js'
import { S3ObjectStore } from '../../src/storage/s3-object-store.js'
import { listKeys } from '../conformance/object-store.suite.js'
import { startS3rver, type S3rverServer } from '../helpers/s3rver.js'
import { flushedSegment, openManager, seedCollection } from '../snapshot/env.js'
import { ensureBuilt, json, vecsnap } from './helpers.js'

/** `vecsnap export`, `import` and `repo list|verify|prune` (built binary), to a directory and to s3:// on s3rver. */

let dir: string
let s3: S3rverServer
const tmp: string[] = []

async function emptyDir(label: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `vecsnap-cli-repo-${label}-`))
  tmp.push(d)
  return d
}

/** The environment an s3:// repository on s3rver needs. */
const s3Env = (): NodeJS.ProcessEnv => ({
  AWS_ENDPOINT_URL: s3.endpoint,
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
  AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
})

/** Every file under `root`, relative. */
async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = []
  for (const rel of (await readdir(root, { recursive: true })) as string[]) if ((await stat(join(root, rel))).isFile()) out.push(rel)
  return out.sort()
}

beforeAll(async () => {
  await ensureBuilt()
  s3 = await startS3rver()
  dir = await emptyDir('data')
  const objects = new FsObjectStore({ root: join(dir, 'objects'), fsync: false })
  const manager = await openManager(new LevelMetaStore({ location: join(dir, 'meta') }), objects)
  const coll = await seedCollection(manager, 'docs')
  await flushedSegment(manager, objects, coll, { numRows: 10 })
  await flushedSegment(manager, objects, coll, { numRows: 20 })
  await manager.createSnapshot({ collectionName: 'docs', snapshotName: 's1' })
  await manager.close()
}, 180_000)

afterAll(async () => {
  await s3?.stop()
  for (const d of tmp) await rm(d, { recursive: true, force: true })
})

describe('vecsnap export / import / repo', { timeout: 120_000 }, () => {
  it('exports to a directory, lists and verifies it, and a second export copies nothing', async () => {
    const repo = await emptyDir('fs')
    const first = await json<ExportReport>(dir, 'export', 's1', '--to', repo)
    expect(first).toMatchObject({ snapshotName: 's1', skippedFiles: 0 })
    expect(first.copiedFiles).toBeGreaterThan(0)
    expect(first.copiedBytes).toBeGreaterThan(0)
    expect(await filesUnder(repo)).toContain('repository.json')

    const second = await json<ExportReport>(dir, 'export', 's1', '--to', repo)
    expect(second).toMatchObject({ repositorySnapshotId: first.repositorySnapshotId, copiedFiles: 0, copiedBytes: 0, skippedFiles: first.copiedFiles })

    const list = await json<RepositorySnapshotInfo[]>(dir, 'repo', 'list', '--from', repo)
    expect(list).toEqual([expect.objectContaining({ repositorySnapshotId: first.repositorySnapshotId, snapshotName: 's1', collectionName: 'docs', segmentCount: 2, rowCount: 30 })])
    expect(await json<VerifyReport>(dir, 'repo', 'verify', '--from', repo, '--read-data', 'all')).toEqual({ ok: true, checkedFiles: expect.any(Number), missing: [], corrupt: [] })

    const text = await vecsnap(['--data', dir, 'repo', 'list', '--from', repo])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(new RegExp(`^${first.repositorySnapshotId}\\s+s1\\s+docs\\s`, 'm'))
  })

  it('prints a text report and progress lines on stderr, and no progress with --json', async () => {
    const repo = await emptyDir('text')
    const text = await vecsnap(['--data', dir, 'export', 's1', '--to', repo])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^exported snapshot s1 to .+ as \S+ in /m)
    expect(text.stdout).toMatch(/^copied \d+ files \(.+\), 0 already there \(0 B\)$/m)
    expect(text.stderr).toMatch(/^export s1: 100% \(\d+\/\d+ files, .+\)$/m)
    const quiet = await vecsnap(['--data', dir, '--json', 'export', 's1', '--to', repo])
    expect(quiet.code).toBe(0)
    expect(quiet.stderr).not.toMatch(/export s1:/)
  })

  it('imports from a directory into another data directory, checked against the repository', async () => {
    const repo = await emptyDir('import')
    const exported = await json<ExportReport>(dir, 'export', 's1', '--to', repo)
    const other = await emptyDir('other')
    const imported = await json<SnapshotInfo>(other, 'import', '--from', repo, exported.repositorySnapshotId, 'copy')
    expect(imported).toMatchObject({ name: 'copy', collectionName: 'docs', segmentCount: 2, rowCount: 30 })
    expect((await json<SnapshotInfo[]>(other, 'snapshots')).map((s) => s.name)).toEqual(['copy'])
    const text = await vecsnap(['--data', other, 'import', '--from', repo, exported.repositorySnapshotId, 'copy2'])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^imported \S+ from .+ as snapshot copy2 of docs: 2 segments, 30 rows, /m)
  })

  it('reports a corrupt repository file with exit code 3 (sha256 checked with --read-data all, not with none)', async () => {
    const repo = await emptyDir('corrupt')
    await json<ExportReport>(dir, 'export', 's1', '--to', repo)
    const victim = (await filesUnder(repo)).find((f) => f.startsWith('files/'))!
    const size = (await stat(join(repo, victim))).size
    await writeFile(join(repo, victim), new Uint8Array(size).fill(0xee))
    expect((await json<VerifyReport>(dir, 'repo', 'verify', '--from', repo)).ok).toBe(true)
    const all = await vecsnap(['--data', dir, '--json', 'repo', 'verify', '--from', repo, '--read-data', 'all'])
    expect(all.code).toBe(3)
    const report = JSON.parse(all.stdout) as VerifyReport
    expect(report.ok).toBe(false)
    expect(report.corrupt.length).toBeGreaterThan(0)
    const text = await vecsnap(['--data', dir, 'repo', 'verify', '--from', repo, '--read-data', 'all'])
    expect(text.code).toBe(3)
    expect(text.stdout).toMatch(/^repository .+ is NOT ok: \d+ files checked, 0 missing, [1-9]\d* corrupt$/m)
  })

  it('exports to s3://bucket/prefix (endpoint and credentials from the environment) and imports from it', async () => {
    const bucket = await s3.createBucket()
    const url = `s3://${bucket}/backups/vecsnap/`
    const env = s3Env()
    const run = async <T>(data: string, ...args: string[]): Promise<T> => {
      const r = await vecsnap(['--data', data, '--json', ...args], env)
      if (r.code !== 0) throw new Error(`vecsnap ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
      return JSON.parse(r.stdout) as T
    }
    const exported = await run<ExportReport>(dir, 'export', 's1', '--to', url)
    expect(exported.copiedFiles).toBeGreaterThan(0)
    const keys = await listKeys(new S3ObjectStore({ client: s3.client, bucket }))
    expect(keys).toContain('backups/vecsnap/repository.json')
    expect(keys.every((k) => k.startsWith('backups/vecsnap/'))).toBe(true)
    expect((await run<RepositorySnapshotInfo[]>(dir, 'repo', 'list', '--from', url)).map((s) => s.repositorySnapshotId)).toEqual([exported.repositorySnapshotId])
    expect((await run<VerifyReport>(dir, 'repo', 'verify', '--from', url, '--read-data', 'sample')).ok).toBe(true)
    const other = await emptyDir('s3-import')
    expect(await run<SnapshotInfo>(other, 'import', '--from', url, exported.repositorySnapshotId, 'from-s3')).toMatchObject({ name: 'from-s3', segmentCount: 2, rowCount: 30 })
  })

  it('prunes a repository with retention flags: --dry-run deletes nothing, then the dropped entry and its files go', async () => {
    const repo = await emptyDir('prune')
    const older = await json<ExportReport>(dir, 'export', 's1', '--to', repo)
    expect((await vecsnap(['--data', dir, 'create', 'docs', 's2'])).code).toBe(0)
    const newer = await json<ExportReport>(dir, 'export', 's2', '--to', repo)
    const files = await filesUnder(repo)

    const dry = await json<PruneReport>(dir, 'repo', 'prune', '--from', repo, '--keep-last', '1', '--dry-run')
    expect(dry).toMatchObject({ dryRun: true, failed: [] })
    expect(dry.kept).toEqual([{ name: newer.repositorySnapshotId, collectionName: 'docs', reasons: ['last 1'] }])
    expect(dry.dropped.map((d) => d.name)).toEqual([older.repositorySnapshotId])
    expect(await filesUnder(repo)).toEqual(files)

    const text = await vecsnap(['--data', dir, 'repo', 'prune', '--from', repo, '--keep-last', '1'])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^repository .+: keep 1 snapshots:$/m)
    expect(text.stdout).toMatch(new RegExp(`^${older.repositorySnapshotId}\\s+docs\\s+\\d`, 'm'))
    expect(text.stdout).toMatch(/^freed .+ \(files no remaining snapshot references\)$/m)
    expect((await json<RepositorySnapshotInfo[]>(dir, 'repo', 'list', '--from', repo)).map((e) => e.repositorySnapshotId)).toEqual([newer.repositorySnapshotId])
    expect((await json<VerifyReport>(dir, 'repo', 'verify', '--from', repo, '--read-data', 'all')).ok).toBe(true)

    for (const args of [['repo', 'prune', '--from', repo], ['repo', 'prune', '--from', repo, '--keep-last', '0']]) {
      const r = await vecsnap(['--data', dir, ...args])
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toMatch(/^error INVALID_ARGUMENT: /)
    }
  })

  it('rejects bad repositories and arguments (exit 2, or 1 for usage) and writes nothing', async () => {
    const missing = join(await emptyDir('missing'), 'nope')
    const cases: [string[], number, RegExp][] = [
      [['export', 's1', '--to', 's3://'], 2, /^error INVALID_ARGUMENT: /],
      [['export', 's1', '--to', 'ftp://host/x'], 2, /^error INVALID_ARGUMENT: /],
      [['export', 's1', '--to', ''], 2, /^error INVALID_ARGUMENT: /],
      [['export', 'no-such-snapshot', '--to', missing], 2, /^error NOT_FOUND: /],
      [['repo', 'list', '--from', missing], 2, /^error NOT_FOUND: /],
      [['import', '--from', missing, 'id', 'x'], 2, /^error NOT_FOUND: /],
      [['repo', 'verify', '--from', missing, '--read-data', 'some'], 2, /^error INVALID_ARGUMENT: /],
      [['export', 's1'], 1, /required option '--to <repository>'/],
    ]
    for (const [args, code, stderr] of cases) {
      const r = await vecsnap(['--data', dir, ...args])
      expect(r.code, args.join(' ')).toBe(code)
      expect(r.stderr, args.join(' ')).toMatch(stderr)
    }
    await expect(stat(missing)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
