import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { expectLiveFiles, expectNothingLeft, filesOf, possibleCaptures, put, raceCollection, restoredHashes, Scheduled, seedSegment } from './scheduled.js'

/**
 * The pin protocol of SPEC section 11 on a shared conditional store: two managers, as two
 * processes over one etcd (two `MapMetaStore`s over one map: conditional batches hold
 * across them), race a create, a compaction of segments it may capture, a dropIndex, GC
 * in both, and the drops of two snapshots that share a manifest, in an order
 * `fc.scheduler()` decides call by call. Whatever the order: every operation succeeds, no
 * live or pinned file is lost, every committed snapshot verifies and restores to a state
 * some order could have captured, and once everything is dropped GC leaves nothing behind
 * (no pinned file, manifest or list leaks).
 */

const LONG = process.env.VECSNAP_LONG === '1'

describe('the pin protocol on a shared conditional store (fc.scheduler, two managers)', () => {
  it(
    'concurrent create, compact, dropIndex, drops of snapshots sharing manifests and GC lose nothing and leak nothing',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), fc.boolean(), fc.boolean(), async (s, dropIndex, dropMid) => {
          const dir = await mkdtemp(join(tmpdir(), 'vecsnap-pin-race-'))
          const sched = new Scheduled(s)
          const raw = new FsObjectStore({ root: join(dir, 'objects') })
          const objects = sched.objects(raw)
          const data = new Map<string, string>()
          const options = { objects, gcIntervalMs: 0, dropGraceMs: 0, orphanGraceMs: 3_600_000, checkIntervalMs: 10 }
          const a = new SnapshotManager({ meta: sched.meta(new MapMetaStore({ data })), ...options })
          const b = new SnapshotManager({ meta: sched.meta(new MapMetaStore({ data })), ...options })
          await a.open()
          await b.open()
          try {
            const { catalog } = a
            const c = await raceCollection(a)
            // `old` pins d and e (e is dropped since); `mid` pins d (reusing old's manifest), x and y.
            const [d, e] = [await seedSegment(a, objects, c, 4), await seedSegment(a, objects, c, 8)]
            await a.createSnapshot({ collectionName: 'docs', snapshotName: 'old' })
            await catalog.dropSegment(e.id)
            const [x, y] = [await seedSegment(a, objects, c, 1), await seedSegment(a, objects, c, 2)]
            await a.createSnapshot({ collectionName: 'docs', snapshotName: 'mid' })
            const ids = { collectionId: c.id, partitionId: x.partitionId, segmentId: 999_999 }
            const merged = await put(objects, catalog.layout.insertLog({ ...ids, fieldId: c.schema.fields[0].fieldId, logId: 1 }))
            const { capture, possible } = possibleCaptures([d, e, x, y], d, [x, y], merged.key, dropIndex)

            sched.racing = true
            const race = Promise.allSettled([
              a.runGc(),
              a.createSnapshot({ collectionName: 'docs', snapshotName: 'race' }),
              b.catalog.compact({ collection: 'docs', sources: [x.id, y.id], result: { numRows: 3, binlogs: [{ fieldId: c.schema.fields[0].fieldId, files: [merged] }] } }),
              dropIndex ? b.catalog.dropIndex('docs', 'vec_idx') : Promise.resolve(),
              a.dropSnapshot('old'),
              dropMid ? b.dropSnapshot('mid') : Promise.resolve(),
              b.runGc(),
            ])
            const results = await s.waitFor(race)
            sched.racing = false
            for (const r of results) expect(r.status === 'fulfilled' ? 'ok' : String((r as PromiseRejectedResult).reason)).toBe('ok')

            await expectLiveFiles(a, raw, dropIndex)
            await b.runGc()
            for (const snap of await a.listSnapshots()) {
              const hashes = await restoredHashes(a, raw, snap.name)
              if (snap.name === 'race') expect(possible, 'restore of the raced snapshot').toContainEqual(hashes)
              else expect(hashes).toEqual(capture([filesOf(d), filesOf(x), filesOf(y)], true))
            }
            await expectNothingLeft(a, raw)
          } finally {
            sched.racing = false
            await a.close()
            await b.close()
            await rm(dir, { recursive: true, force: true })
          }
        }),
        { numRuns: Number(process.env.VECSNAP_RACE_RUNS ?? (LONG ? 300 : 12)) },
      )
    },
    LONG || process.env.VECSNAP_RACE_RUNS !== undefined ? 0 : 90_000,
  )
})
