import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { expectLiveFiles, expectNothingLeft, filesOf, possibleCaptures, put, raceCollection, restoredHashes, Scheduled, seedSegment } from './scheduled.js'

/**
 * `fc.scheduler()` decides the order in which every MetaStore and ObjectStore call of
 * concurrent GC, createSnapshot, compaction, dropSegment, dropIndex and dropSnapshot
 * starts. Whatever the interleaving, a committed snapshot restores to the files one of
 * the possible orders captured, and no live file is deleted.
 */

const LONG = process.env.VECSNAP_LONG === '1'

describe('GC racing snapshots and compaction (fc.scheduler)', () => {
  it(
    'no interleaving deletes a file a committed snapshot or a live segment needs',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), fc.boolean(), fc.boolean(), async (s, dropIndex, dropOld) => {
          const dir = await mkdtemp(join(tmpdir(), 'vecsnap-race-'))
          const sched = new Scheduled(s)
          const raw = new FsObjectStore({ root: join(dir, 'objects') })
          const objects = sched.objects(raw)
          const manager = new SnapshotManager({
            meta: sched.meta(new MemoryMetaStore()),
            objects,
            gcIntervalMs: 0,
            dropGraceMs: 0,
            // The host writes a compaction's files before it records them: only this grace keeps them meanwhile.
            orphanGraceMs: 3_600_000,
            checkIntervalMs: 10,
          })
          await manager.open()
          try {
            const { catalog } = manager
            const c = await raceCollection(manager)
            // `old` pins d and e (e is dropped since); a and b, which race, are pinned by nothing yet.
            const [d, e] = [await seedSegment(manager, objects, c, 4), await seedSegment(manager, objects, c, 8)]
            await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'old' })
            await catalog.dropSegment(e.id)
            const [a, b] = [await seedSegment(manager, objects, c, 1), await seedSegment(manager, objects, c, 2)]
            const ids = { collectionId: c.id, partitionId: a.partitionId, segmentId: 999_999 }
            const merged = await put(objects, catalog.layout.insertLog({ ...ids, fieldId: c.schema.fields[0].fieldId, logId: 1 }))
            const { capture, possible } = possibleCaptures([a, b, d, e], d, [a, b], merged.key, dropIndex)

            sched.racing = true
            const race = Promise.allSettled([
              manager.runGc(),
              manager.createSnapshot({ collectionName: 'docs', snapshotName: 'race' }),
              catalog.compact({ collection: 'docs', sources: [a.id, b.id], result: { numRows: 3, binlogs: [{ fieldId: c.schema.fields[0].fieldId, files: [merged] }] } }),
              dropIndex ? catalog.dropIndex('docs', 'vec_idx') : Promise.resolve(),
              dropOld ? manager.dropSnapshot('old') : Promise.resolve(),
              manager.runGc(),
            ])
            const results = await s.waitFor(race)
            sched.racing = false
            for (const r of results) expect(r.status === 'fulfilled' ? 'ok' : String((r as PromiseRejectedResult).reason)).toBe('ok')

            await expectLiveFiles(manager, raw, dropIndex)
            // Every committed snapshot is intact and restores to one of the possible captures.
            await manager.runGc()
            for (const snap of await manager.listSnapshots()) {
              const hashes = await restoredHashes(manager, raw, snap.name)
              if (snap.name === 'race') expect(possible, 'restore of the raced snapshot').toContainEqual(hashes)
              else expect(hashes).toEqual(capture([filesOf(d), filesOf(e)], true))
            }
            await expectNothingLeft(manager, raw)
          } finally {
            sched.racing = false
            await manager.close()
            await rm(dir, { recursive: true, force: true })
          }
        }),
        { numRuns: Number(process.env.VECSNAP_RACE_RUNS ?? (LONG ? 500 : 15)) },
      )
    },
    LONG || process.env.VECSNAP_RACE_RUNS !== undefined ? 0 : 60_000,
  )
})
