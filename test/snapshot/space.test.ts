import { describe, expect, it } from 'vitest'
import { keys } from '../../src/meta/keys.js'
import { segmentFiles } from '../../src/meta/segment-files.js'
import type { SegmentInfo } from '../../src/catalog-types.js'
import { backends, code, flushedSegment, putFile, worldPerTest } from './env.js'

/** Bytes of a segment's files, summed here from the catalog record (the model the report must match). */
function bytes(...segments: SegmentInfo[]): number {
  let total = 0
  for (const s of segments) for (const { file } of segmentFiles(s)) total += file.size
  return total
}

/** SPEC section 13: ZFS-style space accounting from metadata. */
describe.each(backends)('space accounting on $name', (backend) => {
  const w = worldPerTest(backend)

  it('follows referenced / exclusive / written / snapshot-only as segments are dropped and snapshots taken', async () => {
    const [a, b, c] = w.segs
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's1' })
    let r = await w.manager.spaceReport()
    expect(r).toEqual({
      snapshots: [{ name: 's1', collectionName: 'docs', referencedBytes: bytes(a, b, c), exclusiveBytes: 0, writtenBytes: bytes(a, b, c) }],
      collections: [{ name: 'docs', liveBytes: bytes(a, b, c), snapshotOnlyBytes: 0 }],
      totalBytes: bytes(a, b, c),
    })

    // Dropping a segment leaves its files to the snapshot alone.
    await w.manager.catalog.dropSegment(a.id)
    const d = await flushedSegment(w.manager, w.stores.objects, w.coll, { numRows: 5 })
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's2' })
    await w.manager.catalog.dropSegment(b.id)
    r = await w.manager.spaceReport()
    expect(r.snapshots).toEqual([
      { name: 's1', collectionName: 'docs', referencedBytes: bytes(a, b, c), exclusiveBytes: bytes(a), writtenBytes: bytes(a, b, c) },
      // b is in both snapshots: exclusive to neither; d is new since s1.
      { name: 's2', collectionName: 'docs', referencedBytes: bytes(b, c, d), exclusiveBytes: 0, writtenBytes: bytes(d) },
    ])
    expect(r.collections).toEqual([{ name: 'docs', liveBytes: bytes(c, d), snapshotOnlyBytes: bytes(a, b) }])
    expect(r.totalBytes).toBe(bytes(a, b, c, d))

    expect(await w.manager.reclaimableBytes([])).toBe(0)
    expect(await w.manager.reclaimableBytes(['s1'])).toBe(bytes(a))
    expect(await w.manager.reclaimableBytes(['s2'])).toBe(0)
    expect(await w.manager.reclaimableBytes(['s1', 's2', 's1'])).toBe(bytes(a, b))
  })

  it('counts as written only the files a re-captured segment gained (a deltalog), not the files it shares', async () => {
    const [, , c] = w.segs
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's1' })
    const delta = await putFile(w.stores.objects, `files/delta_log/host/${c.id}/late`, 40)
    await w.manager.catalog.addDeltalogs(c.id, [{ fieldId: c.deltalogs[0].fieldId, files: [delta] }])
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's2' })
    const [s1, s2] = (await w.manager.spaceReport()).snapshots
    expect(s2.writtenBytes).toBe(40)
    expect(s2.referencedBytes).toBe(s1.referencedBytes + 40)
    // Dropping the segment leaves its files to both snapshots; the late deltalog to s2 alone.
    await w.manager.catalog.dropSegment(c.id)
    expect(await w.manager.reclaimableBytes(['s2'])).toBe(40)
    expect(await w.manager.reclaimableBytes(['s1'])).toBe(0)
    expect(await w.manager.reclaimableBytes(['s1', 's2'])).toBe(bytes(await w.manager.catalog.getSegment(c.id)))
  })

  it('counts a snapshot an unfinished restore reads as held (nothing of it is reclaimable)', async () => {
    const [a] = w.segs
    const info = await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's1' })
    await w.manager.catalog.dropSegment(a.id)
    expect(await w.manager.reclaimableBytes(['s1'])).toBe(bytes(a))
    // What a restore job's creation writes for the snapshot it reads (see restore/snapshot-use.ts).
    await w.stores.meta.batch([{ type: 'put', key: keys.restoreSnapshotUses(info.id), value: '1' }])
    expect(await w.manager.reclaimableBytes(['s1'])).toBe(0)
    expect((await w.manager.spaceReport()).snapshots[0].exclusiveBytes).toBe(0)
    expect((await w.manager.spaceReport()).collections[0].snapshotOnlyBytes).toBe(0)
  })

  it('reports one collection, a dropped collection under its snapshots’ name, and shares nothing across collections', async () => {
    const [a, b, c] = w.segs
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's1' })
    const restore = await w.manager.restoreSnapshot({ snapshotName: 's1', targetCollectionName: 'copy' })
    await w.manager.waitForRestore(restore)
    await w.manager.catalog.dropCollection('docs')
    const r = await w.manager.spaceReport()
    expect(r.collections).toEqual([
      { name: 'copy', liveBytes: bytes(a, b, c), snapshotOnlyBytes: 0 },
      { name: 'docs', liveBytes: 0, snapshotOnlyBytes: bytes(a, b, c) },
    ])
    expect(r.totalBytes).toBe(2 * bytes(a, b, c))
    const docs = await w.manager.spaceReport({ collectionName: 'docs' })
    expect(docs.collections.map((x) => x.name)).toEqual(['docs'])
    expect(docs.snapshots.map((x) => x.name)).toEqual(['s1'])
    expect(docs.snapshots[0].exclusiveBytes).toBe(bytes(a, b, c))
    expect(docs.totalBytes).toBe(bytes(a, b, c))
    expect((await w.manager.spaceReport({ collectionName: 'copy' })).snapshots).toEqual([])
  })

  it('rejects bad input: unknown names NOT_FOUND, invalid names INVALID_ARGUMENT, wrong types TypeError', async () => {
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's1' })
    await expect(w.manager.reclaimableBytes(['s1', 'nope'])).rejects.toEqual(code('NOT_FOUND'))
    await expect(w.manager.reclaimableBytes(['a b'])).rejects.toEqual(code('INVALID_ARGUMENT'))
    await expect(w.manager.reclaimableBytes('s1' as never)).rejects.toThrow(TypeError)
    await expect(w.manager.reclaimableBytes([1] as never)).rejects.toThrow(TypeError)
    await expect(w.manager.spaceReport({ collectionName: 'nope' })).rejects.toEqual(code('NOT_FOUND'))
    await expect(w.manager.spaceReport({ collectionName: 5 as never })).rejects.toThrow(TypeError)
  })
})
