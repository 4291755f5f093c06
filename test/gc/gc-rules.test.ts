import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { keys } from '../../src/meta/keys.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { collection, exists, FILE_CLASSES, gcEnv, indexSegment, keysOf, list, put, segment, setMtime, type GcEnv } from './gc-env.js'

const HOUR = 3_600_000

describe('GC rules', () => {
  let env: GcEnv
  let manager: SnapshotManager

  beforeEach(async () => {
    env = await gcEnv()
    manager = env.manager
  })

  afterEach(async () => {
    await env.dispose()
  })

  it('collects every file of a dropped segment, forgets its record, and leaves live segments alone', async () => {
    const c = await collection(manager)
    const live = await segment(manager, env.objects, c)
    const gone = await segment(manager, env.objects, c)
    await manager.catalog.dropSegment(gone.id)
    const before = await list(env.objects)
    expect(before).toEqual([...keysOf(live), ...keysOf(gone)].sort())

    const report = await manager.runGc()
    expect(report).toEqual({ deletedObjects: 8, deletedBytes: 8 * 32, keptForSnapshots: 0, keptForGrace: 0, orphansDeleted: 0, dryRun: false })
    expect(await list(env.objects)).toEqual(keysOf(live).sort())
    await expect(manager.catalog.getSegment(gone.id)).rejects.toMatchObject({ code: 'NOT_FOUND' })
    expect((await manager.catalog.getSegment(live.id)).state).toBe('flushed')
    // A second pass has nothing left to do.
    expect(await manager.runGc()).toMatchObject({ deletedObjects: 0, keptForSnapshots: 0, keptForGrace: 0 })
  })

  describe.each(FILE_CLASSES)('file class %s', (cls) => {
    it('is deleted with its dropped segment, kept while a snapshot pins the segment', async () => {
      const c = await collection(manager)
      const seg = await segment(manager, env.objects, c)
      const [key] = keysOf(seg, cls)
      expect(key).toBeDefined()
      await manager.createSnapshot({ collectionName: c.name, snapshotName: 'snap' })
      await manager.catalog.dropSegment(seg.id)

      const kept = await manager.runGc()
      expect(await exists(env.objects, key)).toBe(true)
      expect(kept.keptForSnapshots).toBe(keysOf(seg).length)
      expect(kept.deletedObjects).toBe(0)
      expect((await manager.verifySnapshot('snap')).ok).toBe(true)

      await manager.dropSnapshot('snap')
      const collected = await manager.runGc()
      expect(await exists(env.objects, key)).toBe(false)
      expect(collected.deletedObjects).toBe(keysOf(seg).length)
      expect(await list(env.objects)).toEqual([])
    })

    it('is kept while its segment is live, even if no snapshot exists', async () => {
      const c = await collection(manager)
      const seg = await segment(manager, env.objects, c)
      await manager.catalog.addDeltalogs(seg.id, [{ fieldId: c.schema.fields[0].fieldId, files: [await put(env.objects, manager.catalog.layout.deltaLog({ collectionId: c.id, partitionId: seg.partitionId, segmentId: seg.id, fieldId: c.schema.fields[0].fieldId, logId: 99 }))] }])
      await put(env.objects, 'files/unrelated/orphan')
      const report = await manager.runGc()
      expect(report.orphansDeleted).toBe(1)
      for (const k of keysOf(await manager.catalog.getSegment(seg.id), cls)) expect(await exists(env.objects, k)).toBe(true)
    })
  })

  describe.each(['index', 'textIndex', 'jsonKeyIndex'] as const)('a replaced %s build', (cls) => {
    it('is collected after a rebuild unless a snapshot pins its build', async () => {
      const c = await collection(manager)
      const seg = await segment(manager, env.objects, c)
      const [old] = keysOf(seg, cls)
      await manager.createSnapshot({ collectionName: c.name, snapshotName: 'before' })
      await indexSegment(manager, env.objects, c, seg.id, [cls])
      const rebuilt = await manager.catalog.getSegment(seg.id)
      const [fresh] = keysOf(rebuilt, cls)
      expect(fresh).not.toBe(old)

      expect((await manager.runGc()).keptForSnapshots).toBe(1)
      expect(await exists(env.objects, old)).toBe(true)
      expect((await manager.verifySnapshot('before')).ok).toBe(true)

      await manager.dropSnapshot('before')
      const report = await manager.runGc()
      expect(report.deletedObjects).toBe(1)
      expect(await exists(env.objects, old)).toBe(false)
      expect(await exists(env.objects, fresh)).toBe(true)
      expect(await list(env.objects)).toEqual(keysOf(rebuilt).sort())
      const records = []
      for await (const e of env.meta.iterate({ gte: keys.droppedBuildPrefix, lt: `${keys.droppedBuildPrefix}\uffff` })) records.push(e)
      expect(records).toEqual([])
    })
  })

  it('keeps the build of an index dropped while a snapshot references it, then collects it and forgets the definition', async () => {
    const c = await collection(manager)
    const a = await segment(manager, env.objects, c)
    const b = await segment(manager, env.objects, c)
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 'with-index' })
    await manager.catalog.dropIndex(c.name, 'vec_idx')
    const indexKeys = [...keysOf(a, 'index'), ...keysOf(b, 'index')]

    const kept = await manager.runGc()
    expect(kept).toMatchObject({ deletedObjects: 0, keptForSnapshots: 2 })
    for (const k of indexKeys) expect(await exists(env.objects, k)).toBe(true)
    const described = await manager.describeSnapshot('with-index', { includeCollectionInfo: true })
    expect(described.indexes?.map((i) => i.name)).toEqual(['vec_idx'])

    // A snapshot taken after the drop does not capture the dropped index, and does not keep its files.
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 'without-index' })
    await manager.dropSnapshot('with-index')
    const collected = await manager.runGc()
    expect(collected).toMatchObject({ deletedObjects: 2, keptForSnapshots: 0 })
    for (const k of indexKeys) expect(await exists(env.objects, k)).toBe(false)
    expect((await manager.catalog.getSegment(a.id)).indexes).toEqual([])
    expect(await env.meta.get(keys.index(c.id, a.indexes[0].indexId))).toBeUndefined()
    // Everything else is still there and the later snapshot is intact.
    expect((await manager.verifySnapshot('without-index')).ok).toBe(true)
    for (const k of [...keysOf(a), ...keysOf(b)].filter((k) => !indexKeys.includes(k))) expect(await exists(env.objects, k)).toBe(true)
  })

  it('collects the builds of a dropped index at once when nothing references them', async () => {
    const c = await collection(manager)
    const a = await segment(manager, env.objects, c)
    await manager.catalog.dropIndex(c.name, 'vec_idx')
    expect(await manager.runGc()).toMatchObject({ deletedObjects: 1, deletedBytes: 32 })
    expect(await exists(env.objects, keysOf(a, 'index')[0])).toBe(false)
    expect(await list(env.objects)).toEqual(keysOf(a).filter((k) => !k.includes('index_files')).sort())
    expect((await manager.catalog.getSegment(a.id)).indexes).toEqual([])
    // A new index on the same field can be built and is live.
    await manager.catalog.createIndex(c.name, { fieldName: 'vec', indexName: 'vec_idx2' })
    expect(await manager.runGc()).toMatchObject({ deletedObjects: 0 })
  })

  it('drops a collection with snapshots: keeps what they pin, collects the rest, restores afterwards', async () => {
    const c = await collection(manager)
    const a = await segment(manager, env.objects, c)
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 'backup' })
    const b = await segment(manager, env.objects, c) // after the snapshot: not pinned
    await manager.catalog.dropCollection(c.name)

    const report = await manager.runGc()
    expect(report).toMatchObject({ deletedObjects: keysOf(b).length, keptForSnapshots: keysOf(a).length })
    for (const k of keysOf(a)) expect(await exists(env.objects, k)).toBe(true)
    for (const k of keysOf(b)) expect(await exists(env.objects, k)).toBe(false)
    expect(await manager.catalog.listDroppedCollections()).toHaveLength(1)

    const job = await manager.restoreSnapshot({ snapshotName: 'backup', targetCollectionName: 'docs_back' })
    const done = await manager.waitForRestore(job)
    expect(done.state).toBe('completed')
    const restored = await manager.catalog.listSegments('docs_back')
    expect(restored).toHaveLength(1)
    for (const [i, k] of keysOf(restored[0]).entries()) {
      expect(Buffer.from((await env.objects.get(k)) as Uint8Array)).toEqual(Buffer.from((await env.objects.get(keysOf(a)[i])) as Uint8Array))
    }

    await manager.dropSnapshot('backup')
    await manager.runGc()
    for (const k of keysOf(a)) expect(await exists(env.objects, k)).toBe(false)
    expect(await manager.catalog.listDroppedCollections()).toEqual([])
    expect(await manager.catalog.listDroppedIndexes()).toEqual([])
    expect(await list(env.objects)).toEqual(keysOf(restored[0]).sort())
  })

  it('compaction, then GC, then restore of a snapshot taken before the compaction', async () => {
    const c = await collection(manager)
    const a = await segment(manager, env.objects, c)
    const b = await segment(manager, env.objects, c)
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 'pre' })
    const [pk, vec] = c.schema.fields.map((f) => f.fieldId)
    const k = { collectionId: c.id, partitionId: a.partitionId, segmentId: 0, logId: 1 }
    const merged = await manager.catalog.compact({
      collection: c.name,
      sources: [a.id, b.id],
      result: {
        numRows: 20,
        binlogs: [
          { fieldId: pk, files: [await put(env.objects, manager.catalog.layout.insertLog({ ...k, segmentId: 777_777, fieldId: pk }))] },
          { fieldId: vec, files: [await put(env.objects, manager.catalog.layout.insertLog({ ...k, segmentId: 777_777, fieldId: vec }))] },
        ],
      },
    })
    const report = await manager.runGc()
    expect(report).toMatchObject({ deletedObjects: 0, keptForSnapshots: keysOf(a).length + keysOf(b).length })

    const job = await manager.restoreSnapshot({ snapshotName: 'pre', targetCollectionName: 'pre_restored' })
    await manager.waitForRestore(job)
    const restored = await manager.catalog.listSegments('pre_restored')
    expect(restored.map((s) => s.numRows)).toEqual([10, 10])
    const sources = [a, b]
    for (const [i, seg] of restored.entries()) {
      const src = keysOf(sources[i])
      for (const [j, key] of keysOf(seg).entries()) {
        expect(Buffer.from((await env.objects.get(key)) as Uint8Array)).toEqual(Buffer.from((await env.objects.get(src[j])) as Uint8Array))
      }
    }

    await manager.dropSnapshot('pre')
    const after = await manager.runGc()
    expect(after.deletedObjects).toBe(keysOf(a).length + keysOf(b).length)
    const expected = [...keysOf(merged), ...restored.flatMap((s) => keysOf(s))].sort()
    expect(await list(env.objects)).toEqual(expected)
  })

  it('collects objects under snapshots/ that no snapshot owns or lists, after orphanGraceMs; keeps listed manifests of a dropped owner', async () => {
    await env.dispose()
    env = await gcEnv({ orphanGraceMs: 3_600_000 })
    manager = env.manager
    const c = await collection(manager)
    const segs = [await segment(manager, env.objects, c), await segment(manager, env.objects, c)]
    const a = await manager.createSnapshot({ collectionName: c.name, snapshotName: 'a' })
    await segment(manager, env.objects, c)
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 'b' }) // lists a's two manifests
    await manager.dropSnapshot('a') // a's manifests stay: b lists them
    // What a crash or a purge leaves: objects of a snapshot that has no record.
    const strays = [`snapshots/${c.id}/lists/999999.txt`, `snapshots/${c.id}/manifests/999999/${segs[0].id}.avro`, `snapshots/${c.id}/metadata/999999.json`]
    for (const k of strays) await put(env.objects, k)
    const listedOfA = segs.map((s) => `snapshots/${c.id}/manifests/${a.id}/${s.id}.avro`)
    expect(await manager.runGc()).toMatchObject({ orphansDeleted: 0 }) // young: kept for the grace
    for (const k of strays) expect(await exists(env.objects, k)).toBe(true)
    env.clock.advance(3_600_000)
    expect(await manager.runGc()).toMatchObject({ orphansDeleted: strays.length })
    for (const k of strays) expect(await exists(env.objects, k)).toBe(false)
    for (const k of listedOfA) expect(await exists(env.objects, k)).toBe(true)
    expect(await manager.verifySnapshot('b')).toMatchObject({ ok: true })
  })

  it('never touches snapshots/ objects it did not write, or objects outside files/', async () => {
    const c = await collection(manager)
    await segment(manager, env.objects, c)
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 's' })
    await put(env.objects, 'snapshots/999/stray.json')
    await put(env.objects, 'elsewhere/thing')
    const snapshotObjects = await list(env.objects, 'snapshots/')
    await manager.runGc()
    expect(await list(env.objects, 'snapshots/')).toEqual(snapshotObjects)
    expect(await exists(env.objects, 'elsewhere/thing')).toBe(true)
  })

  it('deletes in batches of at most 1000 keys', async () => {
    await env.dispose()
    const calls: number[] = []
    env = await gcEnv({}, (inner): ObjectStore => ({
      capabilities: inner.capabilities,
      put: (k, b, o) => inner.put(k, b, o),
      get: (k, o) => inner.get(k, o),
      head: (k, o) => inner.head(k, o),
      list: (p, o) => inner.list(p, o),
      copy: (a, b, o) => inner.copy(a, b, o),
      async delete(ks, o) {
        calls.push(ks.length)
        return inner.delete(ks, o)
      },
    }))
    manager = env.manager
    const c = await collection(manager)
    const seg = await manager.catalog.allocSegment({ collection: c.name })
    // Written straight to the directory: 2600 puts through the store would only slow the test.
    const write = async (key: string): Promise<void> => {
      await mkdir(dirname(join(env.root, key)), { recursive: true })
      await writeFile(join(env.root, key), new Uint8Array(4))
    }
    const files = []
    for (let i = 1; i <= 1500; i++) {
      const key = manager.catalog.layout.insertLog({ collectionId: c.id, partitionId: seg.partitionId, segmentId: seg.id, fieldId: c.schema.fields[0].fieldId, logId: i })
      await write(key)
      files.push({ key, size: 4 })
    }
    for (let i = 0; i < 1100; i++) await write(`files/orphans/${i}`)
    await manager.catalog.flushSegment(seg.id, { numRows: 1, binlogs: [{ fieldId: c.schema.fields[0].fieldId, files }] })
    await manager.catalog.dropSegment(seg.id)
    const report = await manager.runGc()
    expect(report).toMatchObject({ deletedObjects: 2600, orphansDeleted: 1100, deletedBytes: 2600 * 4 })
    expect(Math.max(...calls)).toBeLessThanOrEqual(1000)
    expect(calls.reduce((a, b) => a + b, 0)).toBe(2600)
    expect(await list(env.objects)).toEqual([])
  })
})

describe('GC grace periods', () => {
  let env: GcEnv

  afterEach(async () => {
    await env.dispose()
  })

  it('keeps a dropped segment for dropGraceMs after the drop recorded in the catalog', async () => {
    env = await gcEnv({ dropGraceMs: HOUR })
    const { manager } = env
    const c = await collection(manager)
    const seg = await segment(manager, env.objects, c)
    // Frozen: on a loaded machine real milliseconds pass between the drop and the passes.
    env.clock.set(Date.now())
    await manager.catalog.dropSegment(seg.id)
    env.clock.advance(HOUR - 1)
    expect(await manager.runGc()).toMatchObject({ deletedObjects: 0, keptForGrace: keysOf(seg).length })
    env.clock.advance(1)
    expect(await manager.runGc()).toMatchObject({ deletedObjects: keysOf(seg).length, keptForGrace: 0 })
    expect(await list(env.objects)).toEqual([])
  })

  it('measures the drop grace from droppedAt, never from file mtimes', async () => {
    env = await gcEnv({ dropGraceMs: HOUR })
    const { manager } = env
    const c = await collection(manager)
    // Ancient files, dropped just now: kept.
    const old = await segment(manager, env.objects, c)
    for (const k of keysOf(old)) await setMtime(env.root, k, Date.UTC(2001, 0, 1))
    env.clock.advance(2 * HOUR)
    await manager.catalog.dropSegment(old.id)
    // Files written just now (fresh mtime) but recorded as dropped two hours ago: collected.
    env.clock.advance(-2 * HOUR)
    const fresh = await segment(manager, env.objects, c)
    await manager.catalog.dropSegment(fresh.id)
    env.clock.advance(2 * HOUR)
    for (const k of keysOf(fresh)) await setMtime(env.root, k, env.clock.now())

    const report = await manager.runGc()
    expect(report).toMatchObject({ deletedObjects: keysOf(fresh).length, keptForGrace: keysOf(old).length })
    for (const k of keysOf(old)) expect(await exists(env.objects, k)).toBe(true)
    for (const k of keysOf(fresh)) expect(await exists(env.objects, k)).toBe(false)
  })

  it('applies the drop grace to dropped indexes, replaced builds and dropped collections', async () => {
    env = await gcEnv({ dropGraceMs: HOUR })
    const { manager } = env
    const c = await collection(manager)
    const a = await segment(manager, env.objects, c)
    await indexSegment(manager, env.objects, c, a.id, ['textIndex'])
    await manager.catalog.dropIndex(c.name, 'vec_idx')
    const other = await collection(manager, 'other')
    const b = await segment(manager, env.objects, other)
    await manager.catalog.dropCollection('other')
    env.clock.advance(HOUR / 2)
    const early = await manager.runGc()
    expect(early).toMatchObject({ deletedObjects: 0, keptForGrace: 1 + 1 + keysOf(b).length })
    env.clock.advance(HOUR / 2)
    const late = await manager.runGc()
    expect(late).toMatchObject({ deletedObjects: 1 + 1 + keysOf(b).length, keptForGrace: 0 })
    expect(await manager.catalog.listDroppedCollections()).toEqual([])
  })

  it('keeps unreferenced objects under files/ for orphanGraceMs after their last modification', async () => {
    env = await gcEnv({ orphanGraceMs: HOUR })
    const { manager } = env
    await put(env.objects, 'files/insert_log/1/2/3/4/5')
    const young = await env.objects.head('files/insert_log/1/2/3/4/5')
    env.clock.set((young?.lastModified ?? 0) + HOUR - 1)
    expect(await manager.runGc()).toMatchObject({ deletedObjects: 0, orphansDeleted: 0, keptForGrace: 1 })
    env.clock.advance(1)
    expect(await manager.runGc()).toMatchObject({ deletedObjects: 1, orphansDeleted: 1, keptForGrace: 0, deletedBytes: 32 })
    expect(await list(env.objects)).toEqual([])
  })
})
