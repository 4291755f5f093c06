import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import { backends, code, flushedSegment, objectKeys, openManager, seedCollection, worldPerTest } from '../snapshot/env.js'
import { entryKey } from '../../src/repository/repository-format.js'
import { tempStores, type TempStores } from './helpers.js'

/** SPEC sections 12 and 14: retention inside a repository. */
describe.each(backends)('pruneRepository on $name', (backend) => {
  const w = worldPerTest(backend)
  let repoStores: TempStores
  let other: TempStores
  let pruner: SnapshotManager
  const ids: string[] = []

  beforeEach(async () => {
    repoStores = await tempStores()
    other = await tempStores()
    ids.length = 0
    for (const name of ['s1', 's2', 's3']) {
      await flushedSegment(w.manager, w.stores.objects, w.coll, { numRows: 5, indexes: false })
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: name })
      ids.push((await w.manager.exportSnapshot(name, { to: repoStores.objects, prefix: 'r' })).repositorySnapshotId)
    }
    // Another manager (a real clock, no orphan grace) prunes: any manager can.
    pruner = await openManager(other.meta, other.objects, { orphanGraceMs: 0 })
  })
  afterEach(async () => {
    await pruner.close()
    await repoStores.dispose()
    await other.dispose()
  })

  const files = () => objectKeys(repoStores.objects, 'r/files/')

  it('keeps what the policy keeps, deletes the other entries and the files only they referenced; dryRun deletes nothing', async () => {
    const before = await files()
    const dry = await pruner.pruneRepository({ store: repoStores.objects, prefix: 'r', policy: { keepLast: 1 }, dryRun: true })
    expect(dry.dryRun).toBe(true)
    expect(dry.kept).toEqual([{ name: ids[2], collectionName: 'docs', reasons: ['last 1'] }])
    expect(dry.dropped.map((d) => d.name)).toEqual([ids[1], ids[0]])
    // s3 holds every segment of s1 and s2 (same files): they free their metadata JSON and manifest packs only.
    expect(dry.reclaimedBytes).toBeGreaterThan(0)
    expect(await files()).toEqual(before)
    expect((await pruner.listRepositorySnapshots({ store: repoStores.objects, prefix: 'r' })).length).toBe(3)

    const real = await pruner.pruneRepository({ store: repoStores.objects, prefix: 'r', policy: { keepLast: 1 } })
    expect({ ...real, dryRun: true }).toEqual(dry)
    expect((await pruner.listRepositorySnapshots({ store: repoStores.objects, prefix: 'r' })).map((s) => s.repositorySnapshotId)).toEqual([ids[2]])
    expect(await objectKeys(repoStores.objects, 'r/snapshots/')).toEqual([`r/${entryKey(ids[2])}`])
    const after = await files()
    expect(after.length).toBe(before.length - 4) // the two metadata JSONs and the two manifest packs (s3's pack lists other segments)
    expect(await pruner.verifyRepository({ store: repoStores.objects, prefix: 'r', readData: 'all' })).toMatchObject({ ok: true })
    // What is left still imports.
    const info = await pruner.importSnapshot({ from: repoStores.objects, prefix: 'r', repositorySnapshotId: ids[2], snapshotName: 'back' })
    expect(info.segmentCount).toBe(6)
  })

  it('after a dropped segment the files only older entries referenced go; files no entry references go once past orphanGraceMs', async () => {
    const [victim] = await w.manager.catalog.listSegments('docs', { states: ['flushed'] })
    await w.manager.catalog.dropSegment(victim.id)
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's4' })
    const s4 = (await w.manager.exportSnapshot('s4', { to: repoStores.objects, prefix: 'r' })).repositorySnapshotId
    await repoStores.objects.put('r/files/00/leftover', new Uint8Array(3))
    const report = await pruner.pruneRepository({ store: repoStores.objects, prefix: 'r', policy: { keepLast: 1 } })
    expect(report.kept.map((k) => k.name)).toEqual([s4])
    const victimFiles = [...segmentFiles(victim)].reduce((n, f) => n + f.file.size, 0)
    expect(report.reclaimedBytes).toBeGreaterThan(victimFiles)
    expect(await objectKeys(repoStores.objects, 'r/files/00/')).not.toContain('r/files/00/leftover')
    expect(await pruner.verifyRepository({ store: repoStores.objects, prefix: 'r', readData: 'all' })).toMatchObject({ ok: true })
  })

  it('deletes the source pointer that names an entry it drops, not one that names a kept entry; dryRun keeps every pointer', async () => {
    const pointers = () => objectKeys(repoStores.objects, 'r/sources/')
    const named = async (key: string) => (JSON.parse(Buffer.from((await repoStores.objects.get(key)) as Uint8Array).toString('utf8')) as { entry: string }).entry
    const [first] = await pointers()
    expect(await pointers()).toEqual([first])
    // s1 and s2 go; their source's pointer names s3, which stays.
    await pruner.pruneRepository({ store: repoStores.objects, prefix: 'r', policy: { keepLast: 1 } })
    expect(await pointers()).toEqual([first])
    expect(await named(first)).toBe(ids[2])

    // docs dropped and created again: another source collection under the same name, with its own pointer.
    await w.manager.catalog.dropCollection('docs')
    const coll = await seedCollection(w.manager, 'docs')
    await flushedSegment(w.manager, w.stores.objects, coll, { numRows: 5, indexes: false })
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'again' })
    const again = (await w.manager.exportSnapshot('again', { to: repoStores.objects, prefix: 'r' })).repositorySnapshotId
    const both = await pointers()
    const second = both.find((k) => k !== first) as string
    expect(both).toHaveLength(2)
    expect(await named(second)).toBe(again)

    const dry = await pruner.pruneRepository({ store: repoStores.objects, prefix: 'r', policy: { keepLast: 1 }, dryRun: true })
    expect(dry.dropped.map((d) => d.name)).toEqual([ids[2]])
    expect(await pointers()).toEqual(both)
    await pruner.pruneRepository({ store: repoStores.objects, prefix: 'r', policy: { keepLast: 1 } })
    // s3's pointer went with it; the new source's pointer stays, and its next export still skips every file.
    expect(await pointers()).toEqual([second])
    expect(await named(second)).toBe(again)
    expect(await w.manager.exportSnapshot('again', { to: repoStores.objects, prefix: 'r' })).toMatchObject({ repositorySnapshotId: again, copiedFiles: 0 })
    expect(await pruner.verifyRepository({ store: repoStores.objects, prefix: 'r', readData: 'all' })).toMatchObject({ ok: true })
  })

  it('leaves alone a source pointer that does not read back (export ignores it) and prunes as usual', async () => {
    const [pointer] = await objectKeys(repoStores.objects, 'r/sources/')
    await repoStores.objects.put(pointer, Buffer.from('{'))
    const report = await pruner.pruneRepository({ store: repoStores.objects, prefix: 'r', policy: { keepLast: 1 } })
    expect(report.kept.map((k) => k.name)).toEqual([ids[2]])
    expect(Buffer.from((await repoStores.objects.get(pointer)) as Uint8Array).toString('utf8')).toBe('{')
  })

  it('refuses a bad policy, and a repository with an entry it cannot read, before deleting anything', async () => {
    await expect(pruner.pruneRepository({ store: repoStores.objects, prefix: 'r', policy: {} })).rejects.toEqual(code('INVALID_ARGUMENT'))
    await expect(pruner.pruneRepository({ store: repoStores.objects, prefix: 'r', policy: { keepLast: 1 }, dryRun: 'yes' as never })).rejects.toThrow(TypeError)
    await repoStores.objects.put(`r/${entryKey(ids[0])}`, Buffer.from('{'))
    const before = await files()
    await expect(pruner.pruneRepository({ store: repoStores.objects, prefix: 'r', policy: { keepLast: 1 } })).rejects.toEqual(code('CORRUPT'))
    expect(await files()).toEqual(before)
  })
})
