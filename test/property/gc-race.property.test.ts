import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { bytesFor, hashOf } from './harness.js'
import { filesOf, put, Scheduled, seedSegment } from './scheduled.js'

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
            await catalog.createCollection({
              name: 'docs',
              schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }, { name: 'vec', dataType: 'FloatVector', dim: 4 }, { name: 'text', dataType: 'VarChar', maxLength: 8 }] },
            })
            await catalog.createIndex('docs', { fieldName: 'vec', indexName: 'vec_idx' })
            const c = await catalog.getCollection('docs')
            // `old` pins d and e (e is dropped since); a and b, which race, are pinned by nothing yet.
            const [d, e] = [await seedSegment(manager, objects, c, 4), await seedSegment(manager, objects, c, 8)]
            await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'old' })
            await catalog.dropSegment(e.id)
            const [a, b] = [await seedSegment(manager, objects, c, 1), await seedSegment(manager, objects, c, 2)]
            const ids = { collectionId: c.id, partitionId: a.partitionId, segmentId: 999_999 }
            const merged = await put(objects, catalog.layout.insertLog({ ...ids, fieldId: c.schema.fields[0].fieldId, logId: 1 }))

            // Every flushed state an order can produce, and what a snapshot of it captures.
            const indexKeys = new Set([a, b, d, e].flatMap((x) => x.indexes.flatMap((ix) => ix.files.map((f) => f.key))))
            const capture = (segs: string[][], withIndex: boolean): string[] => segs.flat().filter((k) => withIndex || !indexKeys.has(k)).map((k) => hashOf(bytesFor(k))).sort()
            const possible: string[][] = []
            for (const compacted of [false, true]) {
              for (const indexed of dropIndex ? [true, false] : [true]) {
                possible.push(capture(compacted ? [filesOf(d), [merged.key]] : [filesOf(d), filesOf(a), filesOf(b)], indexed))
              }
            }

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

            // Live files all exist.
            for (const seg of await catalog.listSegments('docs', { states: ['flushed'] })) {
              const live = dropIndex ? filesOf({ ...seg, indexes: [] }) : filesOf(seg)
              for (const k of live) expect(await raw.head(k), `live ${k}`).toBeDefined()
            }
            // Every committed snapshot is intact and restores to one of the possible captures.
            await manager.runGc()
            for (const snap of await manager.listSnapshots()) {
              expect(await manager.verifySnapshot(snap.name)).toMatchObject({ ok: true, missing: [] })
              const job = await manager.restoreSnapshot({ snapshotName: snap.name, targetCollectionName: `r_${snap.name}` })
              await manager.waitForRestore(job)
              const hashes: string[] = []
              for (const seg of await catalog.listSegments(`r_${snap.name}`)) {
                for (const k of filesOf(seg)) hashes.push(hashOf((await raw.get(k)) as Uint8Array))
              }
              hashes.sort()
              if (snap.name === 'race') expect(possible, 'restore of the raced snapshot').toContainEqual(hashes)
              else expect(hashes).toEqual(capture([filesOf(d), filesOf(e)], true))
            }
            // Dropping everything, GC leaves nothing.
            for (const snap of await manager.listSnapshots()) await manager.dropSnapshot(snap.name)
            for (const coll of await catalog.listCollections()) await catalog.dropCollection(coll.name)
            await manager.runGc()
            const left: string[] = []
            for await (const o of raw.list('files/')) left.push(o.key)
            for await (const o of raw.list('snapshots/')) left.push(o.key)
            expect(left).toEqual([])
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
