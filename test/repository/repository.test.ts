import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import { backends, code, flushedSegment, openManager, snapshotProblems, worldPerTest } from '../snapshot/env.js'
import { collectionContent, CountingStore, fileCount, tempStores, type TempStores } from './helpers.js'

/** SPEC section 14: export into a repository, import into another manager, restore. */
describe.each(backends)('repository round trip on $name', (backend) => {
  const w = worldPerTest(backend)
  let repoStores: TempStores
  let repo: CountingStore
  let other: TempStores
  let second: SnapshotManager | undefined

  beforeEach(async () => {
    repoStores = await tempStores()
    repo = new CountingStore(repoStores.objects)
    other = await tempStores()
    second = undefined
  })
  afterEach(async () => {
    await second?.close()
    await repoStores.dispose()
    await other.dispose()
  })

  it('exports, imports into an empty manager, restores the same files; a second export copies nothing; a later snapshot copies only new files', async () => {
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'first' })
    const total = await fileCount(w.manager, 'docs')
    const progress: number[] = []
    const report = await w.manager.exportSnapshot('first', { to: repo, prefix: 'backups/', onProgress: (p) => progress.push(p.copiedFiles + p.skippedFiles) })
    expect(report).toMatchObject({ snapshotName: 'first', copiedFiles: total, skippedFiles: 0 })
    expect(report.copiedBytes).toBe((await w.manager.describeSnapshot('first')).sizeBytes)
    expect(progress.at(-1)).toBe(total)
    // The hold is released at the end.
    expect((await w.manager.describeSnapshot('first')).holds).toEqual([])

    repo.writes.length = 0
    const again = await w.manager.exportSnapshot('first', { to: repo, prefix: 'backups' })
    expect(again).toMatchObject({ repositorySnapshotId: report.repositorySnapshotId, copiedFiles: 0, skippedFiles: total, copiedBytes: 0 })
    expect(repo.writesUnder('backups/files/')).toEqual([])

    // New flushes, a later snapshot: only the new segment's files are copied.
    const added = await flushedSegment(w.manager, w.stores.objects, w.coll, { numRows: 11 })
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 'second' })
    repo.writes.length = 0
    const later = await w.manager.exportSnapshot('second', { to: repo, prefix: 'backups' })
    const newFiles = [...segmentFiles(added)].length
    expect(later).toMatchObject({ copiedFiles: newFiles, skippedFiles: total })
    // the new files, the new segment's manifest and the new metadata JSON; then the entry
    expect(repo.writesUnder('backups/files/')).toHaveLength(newFiles + 2)

    const listed = await w.manager.listRepositorySnapshots({ store: repo, prefix: 'backups' })
    expect(listed.map((s) => [s.snapshotName, s.collectionName, s.segmentCount])).toEqual([
      ['first', 'docs', 3],
      ['second', 'docs', 4],
    ])
    expect(await w.manager.verifyRepository({ store: repo, prefix: 'backups', readData: 'all' })).toMatchObject({ ok: true, missing: [], corrupt: [] })

    // A fresh machine: an empty MetaStore and store, the repository only.
    second = await openManager(other.meta, other.objects)
    const imported = await second.importSnapshot({ from: repoStores.objects, prefix: 'backups', repositorySnapshotId: report.repositorySnapshotId, snapshotName: 'restored-first' })
    const source = await w.manager.describeSnapshot('first')
    expect(imported).toMatchObject({ name: 'restored-first', state: 'committed', collectionName: 'docs', segmentCount: source.segmentCount, rowCount: source.rowCount, sizeBytes: source.sizeBytes, createdAt: source.createdAt })
    expect((await second.listSnapshots()).map((s) => s.name)).toEqual(['restored-first'])
    expect(await second.verifySnapshot('restored-first')).toMatchObject({ ok: true, checkedFiles: total })
    const described = await second.describeSnapshot('restored-first', { includeCollectionInfo: true })
    expect(described.collection?.schema).toEqual(w.coll.schema)
    expect(await snapshotProblems(other.meta, other.objects)).toEqual([])
    const space = await second.spaceReport()
    expect(space.snapshots).toEqual([expect.objectContaining({ name: 'restored-first', collectionName: 'docs', referencedBytes: source.sizeBytes, exclusiveBytes: source.sizeBytes })])

    const job = await second.restoreSnapshot({ snapshotName: 'restored-first', targetCollectionName: 'docs' })
    await second.waitForRestore(job)
    // Exactly the snapshot-time content (not the segment added afterwards).
    await w.manager.restoreSnapshot({ snapshotName: 'first', targetCollectionName: 'docs_at_first' }).then((j) => w.manager.waitForRestore(j))
    expect(await collectionContent(second, other.objects, 'docs')).toEqual(await collectionContent(w.manager, w.stores.objects, 'docs_at_first'))

    // Importing the later snapshot reuses every file the first import brought in.
    let copied = -1
    await second.importSnapshot({ from: repoStores.objects, prefix: 'backups', repositorySnapshotId: later.repositorySnapshotId, snapshotName: 'restored-second', onProgress: (p) => (copied = p.copiedFiles) })
    expect(copied).toBe(newFiles)
  })

  it('a snapshot being exported cannot be dropped (IN_USE); afterwards it can', async () => {
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    let open: () => void = () => undefined
    repo.gate = new Promise((resolve) => (open = resolve))
    let reached: () => void = () => undefined
    const atGate = new Promise<void>((resolve) => (reached = resolve))
    repo.onGate = reached
    const exporting = w.manager.exportSnapshot('s', { to: repo })
    await atGate
    const err = await w.manager.dropSnapshot('s').catch((e: unknown) => e)
    expect(err).toEqual(code('IN_USE'))
    expect((err as Error).message).toMatch(/vecsnap-export:/)
    open()
    await exporting
    await w.manager.dropSnapshot('s')
    expect(await w.manager.listSnapshots()).toEqual([])
  })

  it('an aborted export leaves no entry and a second call copies only what is missing', async () => {
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    const total = await fileCount(w.manager, 'docs')
    const controller = new AbortController()
    const err = await w.manager
      .exportSnapshot('s', { to: repo, signal: controller.signal, onProgress: (p) => p.copiedFiles === 5 && controller.abort() })
      .catch((e: unknown) => e)
    expect(err).toEqual(code('ABORTED'))
    expect(await w.manager.listRepositorySnapshots({ store: repo })).toEqual([])
    const dataWrites = repo.writesUnder('files/').length
    expect(dataWrites).toBeGreaterThanOrEqual(5)
    const report = await w.manager.exportSnapshot('s', { to: repo })
    expect(report.copiedFiles + report.skippedFiles).toBe(total)
    expect(report.skippedFiles).toBeGreaterThanOrEqual(5)
    // No file was written twice.
    const files = repo.writesUnder('files/')
    expect(new Set(files).size).toBe(files.length)
  })

  it('a repository in the manager own store copies with the store copy (server-side on S3), under a prefix outside files/ and snapshots/', async () => {
    await w.manager.close()
    const own = new CountingStore(w.stores.objects)
    w.manager = await openManager(w.stores.meta, own, { now: w.clock.now })
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    await expect(w.manager.exportSnapshot('s', { to: own, prefix: 'files/backup' })).rejects.toEqual(code('INVALID_ARGUMENT'))
    await expect(w.manager.exportSnapshot('s', { to: own })).rejects.toEqual(code('INVALID_ARGUMENT'))
    const report = await w.manager.exportSnapshot('s', { to: own, prefix: 'backup' })
    expect(report.copiedFiles).toBe(await fileCount(w.manager, 'docs'))
    expect(own.copies).toHaveLength(report.copiedFiles)
    expect(own.copies.every(([, to]) => to.startsWith('backup/files/'))).toBe(true)
    expect(await w.manager.verifyRepository({ store: own, prefix: 'backup', readData: 'all' })).toMatchObject({ ok: true })
  })

  it('rejects bad arguments before doing anything', async () => {
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    await expect(w.manager.exportSnapshot('missing', { to: repo })).rejects.toEqual(code('NOT_FOUND'))
    await expect(w.manager.exportSnapshot('s', {} as never)).rejects.toThrow(TypeError)
    await expect(w.manager.exportSnapshot('s', { to: repo, prefix: '../x' })).rejects.toEqual(code('INVALID_ARGUMENT'))
    await expect(w.manager.exportSnapshot('../s', { to: repo })).rejects.toEqual(code('INVALID_ARGUMENT'))
    await expect(w.manager.listRepositorySnapshots({ store: repo })).rejects.toEqual(code('NOT_FOUND'))
    const { repositorySnapshotId } = await w.manager.exportSnapshot('s', { to: repo })
    const base = { from: repo, repositorySnapshotId, snapshotName: 'copy' }
    await expect(w.manager.importSnapshot({ ...base, repositorySnapshotId: 'nope' })).rejects.toEqual(code('NOT_FOUND'))
    await expect(w.manager.importSnapshot({ ...base, repositorySnapshotId: '../x' })).rejects.toEqual(code('INVALID_ARGUMENT'))
    await expect(w.manager.importSnapshot({ ...base, repositorySnapshotId: 7 as never })).rejects.toThrow(TypeError)
    await expect(w.manager.importSnapshot({ ...base, snapshotName: 's' })).rejects.toEqual(code('ALREADY_EXISTS'))
    await expect(w.manager.importSnapshot({ ...base, from: {} as never })).rejects.toThrow(TypeError)
    await expect(w.manager.verifyRepository({ store: repo, readData: 'most' as never })).rejects.toEqual(code('INVALID_ARGUMENT'))
    // Importing into the manager it came from works too: new IDs, no clash.
    const info = await w.manager.importSnapshot(base)
    expect(info.collectionId).not.toBe(w.coll.id)
    expect(await w.manager.verifySnapshot('copy')).toMatchObject({ ok: true })
    expect(await snapshotProblems(w.stores.meta, w.stores.objects)).toEqual([])
  })
})
