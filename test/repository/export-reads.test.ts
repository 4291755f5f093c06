import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fileKey } from '../../src/repository/repository-format.js'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { readObjectStream } from '../../src/storage/streaming.js'
import { overrideObjects } from '../helpers/override-objects.js'
import { flushedSegment, openManager, seedCollection } from '../snapshot/env.js'
import { drain, fileCount, sha256Of as sha, tempStores, type TempStores } from './helpers.js'

describe('what exportSnapshot reads', () => {
  let stores: TempStores
  let repo: TempStores
  let manager: SnapshotManager | undefined
  beforeEach(async () => {
    stores = await tempStores()
    repo = await tempStores()
  })
  afterEach(async () => {
    await manager?.close()
    await stores.dispose()
    await repo.dispose()
  })

  it('a file without a host SHA-256 that streams in one chunk is read once, and the repository gets exactly its bytes', async () => {
    const reads = new Map<string, number>()
    const source = overrideObjects(stores.objects, {
      getStream: (key: string, options?: object) => {
        reads.set(key, (reads.get(key) ?? 0) + 1)
        return stores.objects.getStream(key, options)
      },
    })
    manager = await openManager(stores.meta, source)
    const coll = await seedCollection(manager, 'docs')
    await flushedSegment(manager, source, coll)
    await flushedSegment(manager, source, coll)
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    const report = await manager.exportSnapshot('s', { to: repo.objects })
    expect(report.copiedFiles).toBe(await fileCount(manager, 'docs'))
    // Files without a sha256: host checksum were read to hash them, once each; the others were streamed once to copy them.
    expect([...reads.values()].every((n) => n === 1)).toBe(true)
    expect(reads.size).toBe(report.copiedFiles)
    const verified = await manager.verifyRepository({ store: repo.objects, readData: 'all' })
    expect(verified).toMatchObject({ ok: true, corrupt: [], missing: [] })
    // Each key holds the source file's bytes.
    for (const key of reads.keys()) {
      const digest = sha(...(await drain((await readObjectStream(stores.objects, key))!)))
      expect(sha(...(await drain((await readObjectStream(repo.objects, fileKey(digest)))!)))).toBe(digest)
    }
  })

  it('an export learns what it can skip from the latest entry of its collection: one entry read, however many the repository holds; a damaged pointer is only ignored', async () => {
    const sourceReads: string[] = []
    const source = overrideObjects(stores.objects, {
      getStream: (key: string, options?: object) => {
        sourceReads.push(key)
        return stores.objects.getStream(key, options)
      },
    })
    const repoReads: string[] = []
    const to = overrideObjects(repo.objects, {
      get: (key: string, options?: object) => {
        repoReads.push(key)
        return repo.objects.get(key, options)
      },
    })
    manager = await openManager(stores.meta, source)
    const docs = await seedCollection(manager, 'docs')
    const other = await seedCollection(manager, 'other')
    await flushedSegment(manager, source, docs)
    await flushedSegment(manager, source, other)
    for (const name of ['a', 'b', 'c']) {
      await manager.createSnapshot({ collectionName: 'other', snapshotName: `other-${name}` })
      await manager.exportSnapshot(`other-${name}`, { to })
    }
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'first' })
    await manager.exportSnapshot('first', { to })
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'second' })
    sourceReads.length = 0
    repoReads.length = 0
    const second = await manager.exportSnapshot('second', { to })
    expect(second.copiedFiles).toBe(0)
    expect(sourceReads).toEqual([])
    const entriesRead = repoReads.filter((k) => k.startsWith('snapshots/'))
    expect(entriesRead).toHaveLength(1)
    const pointers = repoReads.filter((k) => k.startsWith('sources/'))
    expect(pointers).toHaveLength(1)

    await repo.objects.put(pointers[0], Buffer.from('{"vecsnapPointer": 1, "entry": "../x"}'))
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'third' })
    sourceReads.length = 0
    const third = await manager.exportSnapshot('third', { to })
    expect(third.copiedFiles).toBe(0)
    // Nothing known: files without a host SHA-256 were read to hash them (and found in place).
    expect(sourceReads.length).toBeGreaterThan(0)
    expect(new Set(sourceReads).size).toBe(sourceReads.length)
    // The export rewrote the pointer: the next one reads nothing again.
    await manager.createSnapshot({ collectionName: 'docs', snapshotName: 'fourth' })
    sourceReads.length = 0
    await manager.exportSnapshot('fourth', { to })
    expect(sourceReads).toEqual([])
  })
})
