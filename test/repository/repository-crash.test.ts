import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { flushedSegment, openManager, seedCollection, snapshotProblems } from '../snapshot/env.js'
import { CountingStore, fileCount } from './helpers.js'

const fixture = fileURLToPath(new URL('./fixtures/transfer-child.ts', import.meta.url))

/** Runs the child until it logged `atLeast` finished writes, then SIGKILLs it; resolves the logged keys. */
async function killMidway(dir: string, args: string[], atLeast: number): Promise<string[]> {
  const log = join(dir, 'writes.log')
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const lines = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [])
  for (let i = 0; i < 3000 && lines().length < atLeast; i++) {
    if (child.exitCode !== null) throw new Error(`child exited early (${child.exitCode}): ${stderr}`)
    await delay(10)
  }
  child.kill('SIGKILL')
  expect(await exited).toBeNull()
  const written = lines()
  expect(written.length).toBeGreaterThanOrEqual(atLeast)
  expect(written).not.toContain('DONE')
  return written
}

describe('export and import killed with SIGKILL (LevelDB + filesystem, child process)', () => {
  let dir: string | undefined

  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('a re-run completes each and copies no file the killed process completed', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vecsnap-repo-kill-'))
    const srcMeta = new LevelMetaStore({ location: join(dir, 'src', 'meta') })
    const srcObjects = new FsObjectStore({ root: join(dir, 'src', 'objects') })
    let source = await openManager(srcMeta, srcObjects)
    const coll = await seedCollection(source, 'docs')
    for (let i = 0; i < 6; i++) await flushedSegment(source, srcObjects, coll, { numRows: 10 + i })
    await source.createSnapshot({ collectionName: 'docs', snapshotName: 'snap' })
    const total = await fileCount(source, 'docs')
    await source.close()

    // Export, killed part-way.
    const exported = await killMidway(dir, ['export', dir, 'src', 'snap'], 5)
    expect(exported.length).toBeLessThan(total)
    const repo = new CountingStore(new FsObjectStore({ root: join(dir, 'repo') }))
    source = await openManager(new LevelMetaStore({ location: join(dir, 'src', 'meta') }), srcObjects)
    try {
      // The killed export wrote no entry, and its hold expires on its own.
      expect(await source.listRepositorySnapshots({ store: repo })).toEqual([])
      expect((await source.describeSnapshot('snap')).holds.map((h) => h.expiresAt !== undefined)).toEqual([true])
      const report = await source.exportSnapshot('snap', { to: repo })
      expect(report.copiedFiles + report.skippedFiles).toBe(total)
      expect(report.skippedFiles).toBeGreaterThanOrEqual(exported.length)
      for (const key of repo.writesUnder('files/')) expect(exported).not.toContain(key)
      expect(await source.verifyRepository({ store: repo, readData: 'all' })).toMatchObject({ ok: true })

      // Import into an empty manager, killed part-way.
      await rm(join(dir, 'writes.log'))
      const imported = await killMidway(dir, ['import', dir, 'dst', report.repositorySnapshotId], 5)
      expect(imported.length).toBeLessThan(total)
      const dstMeta = new LevelMetaStore({ location: join(dir, 'dst', 'meta') })
      const local = new CountingStore(new FsObjectStore({ root: join(dir, 'dst', 'objects') }))
      const target = await openManager(dstMeta, local)
      try {
        expect(await target.listSnapshots()).toEqual([])
        let last = { copiedFiles: 0, skippedFiles: 0 }
        await target.importSnapshot({ from: repo, repositorySnapshotId: report.repositorySnapshotId, snapshotName: 'imported', onProgress: (p) => (last = p) })
        expect(last.copiedFiles + last.skippedFiles).toBe(total)
        expect(last.skippedFiles).toBeGreaterThanOrEqual(imported.length)
        for (const key of local.writesUnder('files/')) expect(imported).not.toContain(key)
        expect(await target.verifySnapshot('imported')).toMatchObject({ ok: true, checkedFiles: total })
        expect(await snapshotProblems(dstMeta, local)).toEqual([])
      } finally {
        await target.close()
      }
    } finally {
      await source.close()
    }
  }, 60_000)
})
