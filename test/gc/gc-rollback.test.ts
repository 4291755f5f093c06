import { afterEach, describe, expect, it } from 'vitest'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { collection, gcEnv, put, type GcEnv } from './gc-env.js'

/**
 * GC during a restore rollback: the rollback deletes the target's objects before its
 * segment records, so for a while the catalog names files that are gone. They belong to
 * an unfinished job, so the live-file guard (safety class 3) must not abort the pass.
 */
describe('GC while a failed restore rolls back', () => {
  let env: GcEnv | undefined
  afterEach(async () => {
    await env?.dispose()
    env = undefined
  })

  it('passes (deleting nothing live) while the target files are deleted and its segment records not yet', async () => {
    let failKey: string | undefined
    let targetRecorded: (() => Promise<boolean>) | undefined
    let onDelete: (() => Promise<void>) | undefined
    env = await gcEnv({ maxSegmentsPerCopyTask: 1, restoreConcurrency: 1 }, (inner): ObjectStore => ({
      capabilities: inner.capabilities,
      put: (k, b, o) => inner.put(k, b, o),
      get: (k, o) => inner.get(k, o),
      head: (k, o) => inner.head(k, o),
      list: (p, o) => inner.list(p, o),
      async copy(from, to, o) {
        if (from === failKey) {
          // Fail only once another segment of the target is recorded in the catalog.
          while (targetRecorded !== undefined && !(await targetRecorded())) await new Promise((r) => setTimeout(r, 5))
          throw Object.assign(new Error(`injected: cannot read ${from}`), { code: 'ENOENT' })
        }
        return inner.copy(from, to, o)
      },
      async delete(k, o) {
        await inner.delete(k, o)
        const hook = onDelete
        if (hook !== undefined && k.some((key) => key.startsWith('files/') && !key.startsWith('files/host/'))) {
          onDelete = undefined
          await hook()
        }
      },
    }))
    const { manager, objects } = env
    const c = await collection(manager)
    const fieldId = c.schema.fields[0].fieldId
    const keysOf: string[] = []
    for (let i = 0; i < 2; i++) {
      const seg = await manager.catalog.allocSegment({ collection: c.name })
      const file = await put(objects, `files/host/${i}`, 32)
      keysOf.push(file.key)
      await manager.catalog.flushSegment(seg.id, { numRows: 1, binlogs: [{ fieldId, files: [file] }] })
    }
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 's' })
    failKey = keysOf[1]
    targetRecorded = async () => {
      for await (const s of manager.catalog.listAllSegments()) if (s.collectionId !== c.id) return true
      return false
    }
    let gcDuringRollback: Promise<unknown> | undefined
    onDelete = async () => {
      gcDuringRollback = manager.runGc().then(
        (report) => ({ report }),
        (err: unknown) => ({ err }),
      )
      await gcDuringRollback
    }
    const job = await manager.restoreSnapshot({ snapshotName: 's', targetCollectionName: 'copy' })
    await expect(manager.waitForRestore(job)).rejects.toMatchObject({ code: 'RESTORE_FAILED' })
    expect(gcDuringRollback).toBeDefined()
    const outcome = (await gcDuringRollback) as { err?: unknown; report?: unknown }
    expect(outcome.err).toBeUndefined()
    expect(outcome.report).toMatchObject({ dryRun: false })
    for (const key of keysOf) expect(await objects.head(key)).toBeDefined()
  })
})
