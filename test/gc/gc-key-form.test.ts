import { afterEach, describe, expect, it } from 'vitest'
import { collection, exists, gcEnv, list, put, type GcEnv } from './gc-env.js'

/**
 * GC safety class 3 (a path-form mismatch makes live files look orphaned): keys as the
 * catalog records them must be the keys the store lists. When a live segment's file is not
 * in the listing (a host that records `files/b/x` for a file it wrote at `files/a/x`, or
 * keys that differ only in Unicode normalization), every such file would look like an
 * orphan: the pass aborts with `CORRUPT` and deletes nothing.
 */
describe('GC and the form of recorded keys', () => {
  let env: GcEnv | undefined
  afterEach(async () => {
    await env?.dispose()
    env = undefined
  })

  it.each([
    ['another prefix', 'files/written/here/0', 'files/recorded/there/0'],
    ['another Unicode normalization', 'files/host/caf\u00e9', 'files/host/cafe\u0301'],
  ])('a live file missing from the listing (%s) aborts the pass, deleting nothing', async (_why, written, recorded) => {
    env = await gcEnv()
    const { manager, objects } = env
    const c = await collection(manager)
    const file = await put(objects, written, 24)
    const seg = await manager.catalog.allocSegment({ collection: c.name })
    await manager.catalog.flushSegment(seg.id, { numRows: 1, binlogs: [{ fieldId: c.schema.fields[0].fieldId, files: [{ ...file, key: recorded }] }] })
    const err = await manager.runGc().catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'CORRUPT', details: { missing: [recorded], live: true } })
    expect(await exists(objects, written)).toBe(true) // not collected as an orphan
    await expect(manager.runGc({ dryRun: true })).rejects.toMatchObject({ code: 'CORRUPT' })
    expect(await list(objects)).toEqual([written])
  })
})

describe('GC and a file recorded during the pass (safety class 10)', () => {
  let env: GcEnv | undefined
  afterEach(async () => {
    await env?.dispose()
    env = undefined
  })

  it('an orphan candidate the host records after the catalog mark is not deleted (the catalog is read again before deleting)', async () => {
    let hook: (() => Promise<void>) | undefined
    env = await gcEnv({}, (inner) => ({
      capabilities: inner.capabilities,
      put: (k, b, o) => inner.put(k, b, o),
      async get(k, o) {
        // The reference mark reads a snapshot's list: the catalog mark is over by then.
        if (k.endsWith('.txt') && hook !== undefined) {
          const h = hook
          hook = undefined
          await h()
        }
        return inner.get(k, o)
      },
      head: (k, o) => inner.head(k, o),
      list: (p, o) => inner.list(p, o),
      copy: (a, b, o) => inner.copy(a, b, o),
      delete: (k, o) => inner.delete(k, o),
    }))
    const { manager, objects } = env
    const c = await collection(manager)
    const seg = await manager.catalog.allocSegment({ collection: c.name })
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 's' })
    // Written, not yet recorded: an orphan as far as the catalog mark knows (zero grace).
    const file = await put(objects, 'files/in-flight/0', 16)
    hook = async () => {
      await manager.catalog.flushSegment(seg.id, { numRows: 1, binlogs: [{ fieldId: c.schema.fields[0].fieldId, files: [file] }] })
    }
    const report = await manager.runGc()
    expect(hook).toBeUndefined() // it ran
    expect(report.orphansDeleted).toBe(0)
    expect(await exists(objects, file.key)).toBe(true)
  })
})
