import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { SnapshotManager } from '../../src/snapshot-manager.js'
import { backends, code, objectKeys, openManager, snapshotProblems, worldPerTest } from '../snapshot/env.js'
import type { IndexInfo } from '../../src/catalog-types.js'
import { MAX_INDEX_DEFINITIONS } from '../../src/meta/catalog-collections.js'
import { entryKey, fileKey } from '../../src/repository/repository-format.js'
import { CountingStore, sha256Of, tempStores, type TempStores } from './helpers.js'

/** SPEC section 14: a repository is untrusted input; damage is found, never imported. */
describe.each(backends)('repository faults on $name', (backend) => {
  const w = worldPerTest(backend)
  let repoStores: TempStores
  let other: TempStores
  let local: CountingStore
  let second: SnapshotManager
  let id: string

  beforeEach(async () => {
    repoStores = await tempStores()
    other = await tempStores()
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    id = (await w.manager.exportSnapshot('s', { to: repoStores.objects })).repositorySnapshotId
    local = new CountingStore(other.objects)
    second = await openManager(other.meta, local)
  })
  afterEach(async () => {
    await second.close()
    await repoStores.dispose()
    await other.dispose()
  })

  const entryOf = async (): Promise<
    Record<string, unknown> & {
      files: { key: string; path: string; size: number; sha256: string }[]
      manifestPack: { key: string; size: number; sha256: string }
      manifests: { segmentId: number; offset: number; size: number; sha256: string }[]
      metadata: { key: string; size: number; sha256: string }
    }
  > =>
    JSON.parse(Buffer.from((await repoStores.objects.get(entryKey(id))) as Uint8Array).toString('utf8'))
  const writeEntry = (e: unknown) => repoStores.objects.put(entryKey(id), Buffer.from(JSON.stringify(e)))
  const importIt = () => second.importSnapshot({ from: repoStores.objects, repositorySnapshotId: id, snapshotName: 'imported' })
  const nothingRegistered = async () => {
    expect(await second.listSnapshots()).toEqual([])
    expect(await snapshotProblems(other.meta, other.objects)).toEqual([])
  }

  it('a file corrupted in place (same size) fails the import CORRUPT, registers nothing; verify all finds it, verify none does not', async () => {
    const entry = await entryOf()
    const victim = entry.files.reduce((a, b) => (b.size > a.size ? b : a))
    const bytes = Buffer.from((await repoStores.objects.get(victim.key)) as Uint8Array)
    bytes[bytes.length - 1] ^= 0xff
    await repoStores.objects.put(victim.key, bytes)
    await expect(importIt()).rejects.toEqual(code('CORRUPT'))
    await nothingRegistered()
    // The damaged file never landed under its local key.
    expect(await other.objects.head(`files/imported/${victim.key.split('/').at(-1)?.slice(0, 2)}/${victim.key.split('/').at(-1)}/${victim.path}`)).toBeUndefined()
    expect(await w.manager.verifyRepository({ store: repoStores.objects, readData: 'none' })).toMatchObject({ ok: true })
    expect(await w.manager.verifyRepository({ store: repoStores.objects, readData: 'all' })).toMatchObject({ ok: false, corrupt: [victim.key], missing: [] })
  })

  it('a truncated file fails the import CORRUPT; verify none finds it by its size; a missing one is reported missing', async () => {
    const entry = await entryOf()
    const [a, b] = entry.files
    const bytes = (await repoStores.objects.get(a.key)) as Uint8Array
    await repoStores.objects.put(a.key, bytes.subarray(0, bytes.byteLength - 1))
    await repoStores.objects.delete([b.key])
    await expect(importIt()).rejects.toEqual(code('CORRUPT'))
    await nothingRegistered()
    const report = await w.manager.verifyRepository({ store: repoStores.objects })
    expect(report).toMatchObject({ ok: false, corrupt: [a.key], missing: [b.key] })
    expect(report.checkedFiles).toBe(new Set([...entry.files.map((f) => f.key)]).size + 2) // + the metadata JSON and the manifest pack
  })

  it('sample reads the SHA-256 of part of the files: every file damaged is found by any sample', async () => {
    const entry = await entryOf()
    for (const f of entry.files) {
      const bytes = Buffer.from((await repoStores.objects.get(f.key)) as Uint8Array)
      if (bytes.length === 0) continue
      bytes[0] ^= 0xff
      await repoStores.objects.put(f.key, bytes)
    }
    const report = await w.manager.verifyRepository({ store: repoStores.objects, readData: 'sample' })
    expect(report.ok).toBe(false)
    expect(report.corrupt.length).toBeGreaterThan(0)
  })

  it('an unknown repository or entry format is UNSUPPORTED_VERSION', async () => {
    await writeEntry({ ...(await entryOf()), vecsnapEntry: 2 })
    await expect(importIt()).rejects.toEqual(code('UNSUPPORTED_VERSION'))
    await repoStores.objects.put('repository.json', Buffer.from(JSON.stringify({ vecsnapRepository: 9, id: 'x', createdAt: 1 })))
    await expect(importIt()).rejects.toEqual(code('UNSUPPORTED_VERSION'))
    await expect(w.manager.listRepositorySnapshots({ store: repoStores.objects })).rejects.toEqual(code('UNSUPPORTED_VERSION'))
    await expect(w.manager.verifyRepository({ store: repoStores.objects })).rejects.toEqual(code('UNSUPPORTED_VERSION'))
    await expect(w.manager.exportSnapshot('s', { to: repoStores.objects })).rejects.toEqual(code('UNSUPPORTED_VERSION'))
    expect((await w.manager.describeSnapshot('s')).holds).toEqual([])
    await nothingRegistered()
  })

  it.each([
    ['a key with ..', (e: Awaited<ReturnType<typeof entryOf>>) => (e.files[0].key = 'files/../../etc/passwd')],
    ['an absolute key', (e: Awaited<ReturnType<typeof entryOf>>) => (e.files[1].key = '/etc/passwd')],
    ['a key outside files/', (e: Awaited<ReturnType<typeof entryOf>>) => (e.files[1].key = 'snapshots/other.json')],
    ['a path with ..', (e: Awaited<ReturnType<typeof entryOf>>) => (e.files[2].path = '../../x')],
    ['a metadata key with ..', (e: Awaited<ReturnType<typeof entryOf>>) => ((e.metadata as { key: string }).key = '../repository.json')],
    ['a negative size', (e: Awaited<ReturnType<typeof entryOf>>) => (e.files[0].size = -1)],
    ['a fractional size', (e: Awaited<ReturnType<typeof entryOf>>) => (e.files[0].size = 1.5)],
    ['a size past safe integers', (e: Awaited<ReturnType<typeof entryOf>>) => (e.files[0].size = 2 ** 60)],
    ['a hash that is not SHA-256 hex', (e: Awaited<ReturnType<typeof entryOf>>) => (e.files[0].sha256 = 'zz')],
    ['a missing file list', (e: Awaited<ReturnType<typeof entryOf>>) => delete (e as { files?: unknown }).files],
    ['a file the manifests need left out', (e: Awaited<ReturnType<typeof entryOf>>) => e.files.pop()],
    ['another segment count', (e: Awaited<ReturnType<typeof entryOf>>) => ((e.snapshot as { segmentCount: number }).segmentCount = 9)],
    ['a manifest pack key with ..', (e: Awaited<ReturnType<typeof entryOf>>) => (e.manifestPack.key = 'files/../snapshots/x.json')],
    ['manifests not back to back in the pack', (e: Awaited<ReturnType<typeof entryOf>>) => (e.manifests[1].offset += 1)],
    ['manifests that do not fill the pack', (e: Awaited<ReturnType<typeof entryOf>>) => (e.manifestPack.size += 1)],
    ['a manifest whose SHA-256 is not its bytes', (e: Awaited<ReturnType<typeof entryOf>>) => (e.manifests[0].sha256 = e.manifests[1].sha256)],
  ])('an entry with %s is CORRUPT before anything is copied', async (_, damage) => {
    const entry = await entryOf()
    damage(entry)
    await writeEntry(entry)
    await expect(importIt()).rejects.toEqual(code('CORRUPT'))
    expect(local.writes).toEqual([])
    await nothingRegistered()
  })

  it('an entry that is not JSON is CORRUPT, and verify reports it', async () => {
    await repoStores.objects.put(entryKey(id), Buffer.from('{not json'))
    await expect(importIt()).rejects.toEqual(code('CORRUPT'))
    await expect(w.manager.listRepositorySnapshots({ store: repoStores.objects })).rejects.toEqual(code('CORRUPT'))
    expect(await w.manager.verifyRepository({ store: repoStores.objects })).toMatchObject({ ok: false, corrupt: [entryKey(id)] })
    expect(local.writes).toEqual([])
  })

  it('an entry whose collection holds more index definitions than a collection may imports, but its restore is FAILED_PRECONDITION and makes nothing', async () => {
    // Only an imported (or hand-made) snapshot can hold more than MAX_INDEX_DEFINITIONS:
    // createIndex refuses one more. The metadata JSON is rewritten, with its size and
    // SHA-256 in the entry, so the entry is sound and the import takes it.
    const entry = await entryOf()
    const meta = JSON.parse(Buffer.from((await repoStores.objects.get(entry.metadata.key)) as Uint8Array).toString('utf8')) as { indexes: IndexInfo[] }
    const [ix] = meta.indexes
    const top = Math.max(...meta.indexes.map((i) => i.id))
    meta.indexes = [...meta.indexes, ...Array.from({ length: MAX_INDEX_DEFINITIONS + 1 - meta.indexes.length }, (_, i) => ({ ...ix, id: top + 1 + i, name: `extra${i}` }))]
    const bytes = Buffer.from(JSON.stringify(meta))
    const sha256 = sha256Of(bytes)
    await repoStores.objects.put(fileKey(sha256), bytes)
    await writeEntry({ ...entry, metadata: { key: fileKey(sha256), size: bytes.byteLength, sha256 } })
    await importIt()
    expect((await second.describeSnapshot('imported', { includeCollectionInfo: true })).indexes).toHaveLength(MAX_INDEX_DEFINITIONS + 1)

    const err = await second.restoreSnapshot({ snapshotName: 'imported', targetCollectionName: 'copy' }).catch((e: unknown) => e)
    expect(err).toEqual(code('FAILED_PRECONDITION'))
    expect((err as Error).message).toMatch(`has ${MAX_INDEX_DEFINITIONS + 1} index definitions`)
    expect(await second.catalog.listCollections()).toEqual([])
    expect(await second.listRestoreJobs()).toEqual([])
    // No job holds the snapshot or the target name.
    await second.catalog.createCollection({ name: 'copy', schema: { fields: [{ name: 'pk', dataType: 'Int64', isPrimaryKey: true }] } })
    await second.dropSnapshot('imported')
    expect(await snapshotProblems(other.meta, other.objects)).toEqual([])
  })

  it('an aborted import registers nothing; a second call copies only what is missing', async () => {
    const controller = new AbortController()
    const err = await second
      .importSnapshot({ from: repoStores.objects, repositorySnapshotId: id, snapshotName: 'imported', signal: controller.signal, onProgress: (p) => p.copiedFiles === 4 && controller.abort() })
      .catch((e: unknown) => e)
    expect(err).toEqual(code('ABORTED'))
    await nothingRegistered()
    const firstWrites = local.writesUnder('files/imported/')
    expect(firstWrites.length).toBeGreaterThanOrEqual(4)
    let progress = { copiedFiles: 0, skippedFiles: 0, totalFiles: 0 }
    await second.importSnapshot({ from: repoStores.objects, repositorySnapshotId: id, snapshotName: 'imported', onProgress: (p) => (progress = p) })
    expect(progress.skippedFiles).toBe(firstWrites.length)
    expect(progress.copiedFiles + progress.skippedFiles).toBe(progress.totalFiles)
    const all = local.writesUnder('files/imported/')
    expect(new Set(all).size).toBe(all.length)
    expect(await second.verifySnapshot('imported')).toMatchObject({ ok: true })
  })
})

describe('GC and imported snapshots', () => {
  let src: TempStores
  let dst: TempStores
  let repoStores: TempStores
  let a: SnapshotManager
  let b: SnapshotManager | undefined

  beforeEach(async () => {
    ;[src, dst, repoStores] = await Promise.all([tempStores(), tempStores('level'), tempStores()])
    a = await openManager(src.meta, src.objects)
    const { seedCollection, flushedSegment } = await import('../snapshot/env.js')
    const coll = await seedCollection(a, 'docs')
    await flushedSegment(a, src.objects, coll)
    await flushedSegment(a, src.objects, coll, { indexes: false })
    await a.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
    b = undefined
  })
  afterEach(async () => {
    await a.close()
    await b?.close()
    await Promise.all([src.dispose(), dst.dispose(), repoStores.dispose()])
  })

  it('GC keeps an imported snapshot files (even with zero graces) while it exists, and collects them once it is dropped', async () => {
    const { repositorySnapshotId } = await a.exportSnapshot('s', { to: repoStores.objects })
    b = await openManager(dst.meta, dst.objects, { orphanGraceMs: 0, dropGraceMs: 0 })
    await b.importSnapshot({ from: repoStores.objects, repositorySnapshotId, snapshotName: 'imported' })
    const files = () => objectKeys(dst.objects, 'files/')
    const before = await files()
    expect(before.length).toBeGreaterThan(0)
    await b.runGc()
    expect(await files()).toEqual(before)
    expect(await b.verifySnapshot('imported')).toMatchObject({ ok: true })
    const explained = await b.explainObject(before[0])
    expect(explained.verdict).toBe('snapshot')
    // Restored, then the snapshot dropped: the restored collection keeps its own copies.
    const job = await b.restoreSnapshot({ snapshotName: 'imported', targetCollectionName: 'docs' })
    await b.waitForRestore(job)
    await b.dropSnapshot('imported')
    const report = await b.runGc()
    expect(report.orphansDeleted).toBe(before.length)
    expect((await files()).filter((k) => k.startsWith('files/imported/'))).toEqual([])
    expect((await b.catalog.listSegments('docs')).reduce((n, s) => n + s.numRows, 0)).toBe(200)
    expect(await snapshotProblems(dst.meta, dst.objects)).toEqual([])
  })

  it('the files of an import that never completed are collected by GC as orphans', async () => {
    const { repositorySnapshotId } = await a.exportSnapshot('s', { to: repoStores.objects })
    b = await openManager(dst.meta, dst.objects, { orphanGraceMs: 0 })
    const controller = new AbortController()
    await expect(
      b.importSnapshot({ from: repoStores.objects, repositorySnapshotId, snapshotName: 'imported', signal: controller.signal, onProgress: (p) => p.copiedFiles === 3 && controller.abort() }),
    ).rejects.toEqual(code('ABORTED'))
    const left = await objectKeys(dst.objects, 'files/imported/')
    expect(left.length).toBeGreaterThanOrEqual(3)
    const report = await b.runGc()
    expect(report.orphansDeleted).toBe(left.length)
    expect(await objectKeys(dst.objects, 'files/')).toEqual([])
    expect(await snapshotProblems(dst.meta, dst.objects)).toEqual([])
  })

  it('an imported snapshot is durable: listed again after its LevelDB is reopened', async () => {
    const { repositorySnapshotId } = await a.exportSnapshot('s', { to: repoStores.objects })
    b = await openManager(dst.meta, dst.objects)
    await b.importSnapshot({ from: repoStores.objects, repositorySnapshotId, snapshotName: 'imported' })
    await b.close()
    const { LevelMetaStore } = await import('../../src/meta/level-meta-store.js')
    const { join } = await import('node:path')
    b = await openManager(new LevelMetaStore({ location: join(dst.dir, 'meta') }), dst.objects)
    expect((await b.listSnapshots()).map((s) => [s.name, s.rowCount])).toEqual([['imported', 200]])
  })
})
