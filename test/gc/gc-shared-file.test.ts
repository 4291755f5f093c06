import { afterEach, describe, expect, it } from 'vitest'
import { collection, exists, gcEnv, put, type GcEnv } from './gc-env.js'

/**
 * Hosts may name one file from two segments. When both are dropped, a unit GC may collect
 * (past its grace, pinned by nothing) must not delete a key that the other, still kept unit
 * names (in its grace, or pinned by a snapshot in any state).
 */
describe('GC and a file two dropped segments share', () => {
  let env: GcEnv
  afterEach(async () => {
    await env.dispose()
  })

  it('keeps the shared file while the other segment is in its grace, then collects it', async () => {
    env = await gcEnv({ dropGraceMs: 60_000 })
    const { manager, objects, clock } = env
    clock.set(Date.now() + 1_000)
    const c = await collection(manager)
    const fieldId = c.schema.fields[0].fieldId
    const shared = await put(objects, 'files/host/shared', 16)
    const own = await put(objects, 'files/host/own-b', 16)
    const a = await manager.catalog.allocSegment({ collection: c.name })
    await manager.catalog.flushSegment(a.id, { numRows: 1, binlogs: [{ fieldId, files: [shared] }] })
    const b = await manager.catalog.allocSegment({ collection: c.name })
    await manager.catalog.flushSegment(b.id, { numRows: 1, binlogs: [{ fieldId, files: [shared, own] }] })

    await manager.catalog.dropSegment(b.id)
    clock.advance(120_000) // b is past its grace
    await manager.catalog.dropSegment(a.id) // a is in its grace
    expect(await manager.explainObject(shared.key)).toMatchObject({ verdict: 'grace', reasons: [{ kind: 'segment', id: a.id }, { kind: 'grace' }] })
    expect(await manager.explainObject(own.key)).toMatchObject({ verdict: 'collectable', reasons: [{ kind: 'segment', id: b.id }] })
    await manager.runGc()
    expect(await exists(objects, shared.key)).toBe(true)
    expect(await exists(objects, own.key)).toBe(false)

    clock.advance(120_000)
    expect(await manager.explainObject(shared.key)).toMatchObject({ verdict: 'collectable' })
    await manager.runGc()
    expect(await exists(objects, shared.key)).toBe(false)
  })
})
