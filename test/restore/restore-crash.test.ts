import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { keys } from '../../src/meta/keys.js'
import { LevelMetaStore } from '../../src/meta/level-meta-store.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { WrappedObjects, delay, expectSameFiles, flushedSegment, metaEntries, openManager, recordedCopies, recordedKeys, seedCollection } from './helpers.js'

/**
 * A process killed with SIGKILL in the middle of a restore: the next process that opens
 * the same stores finishes the job, the files are identical, and no file recorded as
 * copied is copied again.
 */

const fixture = fileURLToPath(new URL('./fixtures/restore-child.ts', import.meta.url))

describe('restore after SIGKILL (LevelDB + filesystem, child process)', () => {
  let dir: string | undefined

  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('resumes the job after reopen and copies only what was not recorded', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vecsnap-restore-kill-'))
    const meta = new LevelMetaStore({ location: join(dir, 'meta') })
    const fs = new FsObjectStore({ root: join(dir, 'objects') })
    let manager = await openManager(meta, fs)
    const coll = await seedCollection(manager, 'docs')
    const segs = []
    for (let i = 0; i < 10; i++) segs.push(await flushedSegment(manager, fs, coll, { partition: i % 3 === 0 ? 'p1' : '_default' }))
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'snap' })
    await manager.close()
    const total = segs.reduce((n, s) => n + [...segmentFiles(s)].length, 0)

    const log = join(dir, 'copies.log')
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, 'snap', 'restored'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const lines = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [])
    for (let i = 0; i < 1500 && lines().length < 40; i++) {
      if (child.exitCode !== null) throw new Error(`child exited early (${child.exitCode}): ${stderr}`)
      await delay(10)
    }
    expect(lines().length).toBeGreaterThanOrEqual(40)
    child.kill('SIGKILL')
    expect(await exited).toBeNull()
    const firstRun = lines()
    expect(firstRun.length).toBeLessThan(total)

    await meta.open()
    const jobs = await metaEntries(meta, keys.restoreJobPrefix)
    expect(jobs).toHaveLength(1)
    const job = JSON.parse(jobs[0][1]) as { jobId: number; state: string }
    expect(job.state).toBe('in_progress')
    const marks = await recordedCopies(meta, job.jobId)
    await meta.close()
    expect(marks.files.size + marks.segmentIds.size).toBeGreaterThan(0)

    const objects = new WrappedObjects(new FsObjectStore({ root: join(dir, 'objects') }))
    manager = await openManager(meta, objects)
    try {
      const done = await manager.waitForRestore(job.jobId)
      expect(done).toMatchObject({ state: 'completed', progress: 100, copiedSegments: 10, totalSegments: 10 })
      const restored = await manager.catalog.listSegments('restored')
      await expectSameFiles(objects, segs, restored)
      const all = restored.flatMap((s) => [...segmentFiles(s)].map((f) => f.file.key))
      expect(all).toHaveLength(total)
      const recorded = recordedKeys(marks, restored)
      expect(recorded.size).toBeGreaterThan(0)
      for (const key of recorded) expect(firstRun).toContain(key)
      // Exactly the files that were not recorded are copied, each once.
      expect([...objects.copies.keys()].sort()).toEqual(all.filter((k) => !recorded.has(k)).sort())
      for (const n of objects.copies.values()) expect(n).toBe(1)
    } finally {
      await manager.close()
    }
  })
})
