import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { FsObjectStore } from '../../src/storage/fs-object-store.js'
import { MapMetaStore } from '../helpers/map-meta-store.js'
import { bytesFor, hashOf } from './harness.js'
import { filesOf, put, Scheduled, seedSegment } from './scheduled.js'

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
            await catalog.createCollection({
              name: 'docs',
              schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }, { name: 'vec', dataType: 'FloatVector', dim: 4 }, { name: 'text', dataType: 'VarChar', maxLength: 8 }] },
            })
            await catalog.createIndex('docs', { fieldName: 'vec', indexName: 'vec_idx' })
            const c = await catalog.getCollection('docs')
            // `old` pins d and e (e is dropped since); `mid` pins d (reusing old's manifest), x and y.
            const [d, e] = [await seedSegment(a, objects, c, 4), await seedSegment(a, objects, c, 8)]
            await a.createSnapshot({ collectionName: 'docs', snapshotName: 'old' })
            await catalog.dropSegment(e.id)
            const [x, y] = [await seedSegment(a, objects, c, 1), await seedSegment(a, objects, c, 2)]
            await a.createSnapshot({ collectionName: 'docs', snapshotName: 'mid' })
            const ids = { collectionId: c.id, partitionId: x.partitionId, segmentId: 999_999 }
            const merged = await put(objects, catalog.layout.insertLog({ ...ids, fieldId: c.schema.fields[0].fieldId, logId: 1 }))

            const indexKeys = new Set([d, e, x, y].flatMap((seg) => seg.indexes.flatMap((ix) => ix.files.map((f) => f.key))))
            const capture = (segs: string[][], withIndex: boolean): string[] => segs.flat().filter((k) => withIndex || !indexKeys.has(k)).map((k) => hashOf(bytesFor(k))).sort()
            const possible: string[][] = []
            for (const compacted of [false, true]) {
              for (const indexed of dropIndex ? [true, false] : [true]) {
                possible.push(capture(compacted ? [filesOf(d), [merged.key]] : [filesOf(d), filesOf(x), filesOf(y)], indexed))
              }
            }

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

            for (const seg of await catalog.listSegments('docs', { states: ['flushed'] })) {
              const live = dropIndex ? filesOf({ ...seg, indexes: [] }) : filesOf(seg)
              for (const k of live) expect(await raw.head(k), `live ${k}`).toBeDefined()
            }
            await b.runGc()
            for (const snap of await a.listSnapshots()) {
              expect(await a.verifySnapshot(snap.name)).toMatchObject({ ok: true, missing: [] })
              const job = await a.restoreSnapshot({ snapshotName: snap.name, targetCollectionName: `r_${snap.name}` })
              await a.waitForRestore(job)
              const hashes: string[] = []
              for (const seg of await catalog.listSegments(`r_${snap.name}`)) for (const k of filesOf(seg)) hashes.push(hashOf((await raw.get(k)) as Uint8Array))
              hashes.sort()
              if (snap.name === 'race') expect(possible, 'restore of the raced snapshot').toContainEqual(hashes)
              else expect(hashes).toEqual(capture([filesOf(d), filesOf(x), filesOf(y)], true))
            }
            for (const snap of await a.listSnapshots()) await b.dropSnapshot(snap.name)
            for (const coll of await catalog.listCollections()) await catalog.dropCollection(coll.name)
            await a.runGc()
            const left: string[] = []
            for await (const o of raw.list('files/')) left.push(o.key)
            for await (const o of raw.list('snapshots/')) left.push(o.key)
            expect(left).toEqual([])
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
