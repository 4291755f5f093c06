import { afterEach, describe, expect, it } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import type { ObjectExplanation } from '../../src/index.js'
import { collection, gcEnv, keysOf, list, put, segment, type GcEnv } from './gc-env.js'

/** SPEC section 13: explainObject answers from GC's own decision code, so it agrees with the next pass. */
describe('explainObject', () => {
  let env: GcEnv
  afterEach(async () => {
    await env.dispose()
  })

  /** Every key under files/ and snapshots/ with the verdict explainObject gives it. */
  async function verdicts(): Promise<Map<string, ObjectExplanation>> {
    const out = new Map<string, ObjectExplanation>()
    for (const key of [...(await list(env.objects)), ...(await list(env.objects, 'snapshots/'))]) out.set(key, await env.manager.explainObject(key))
    return out
  }

  it('gives live, snapshot, collectable and orphan verdicts with their reasons, and the next pass deletes exactly the collectable and orphan keys', async () => {
    env = await gcEnv()
    const { manager, objects } = env
    const c = await collection(manager)
    const live = await segment(manager, objects, c)
    const pinned = await segment(manager, objects, c)
    const info = await manager.createSnapshot({ collectionName: c.name, snapshotName: 'keep' })
    const gone = await segment(manager, objects, c)
    await manager.catalog.dropSegment(pinned.id)
    await manager.catalog.dropSegment(gone.id)
    await put(objects, 'files/stray/a', 10)
    await put(objects, 'snapshots/999/lists/999.txt', 10)

    const liveKey = keysOf(live)[0]
    expect(await manager.explainObject(liveKey)).toEqual({ key: liveKey, exists: true, sizeBytes: 32, verdict: 'live', reasons: [{ kind: 'segment', id: live.id }] })
    const pinnedKey = keysOf(pinned)[0]
    expect(await manager.explainObject(pinnedKey)).toMatchObject({
      verdict: 'snapshot',
      reasons: [{ kind: 'segment', id: pinned.id }, { kind: 'snapshot', id: info.id, name: 'keep' }],
    })
    expect(await manager.explainObject(keysOf(gone)[0])).toMatchObject({ verdict: 'collectable', reasons: [{ kind: 'segment', id: gone.id }] })
    expect(await manager.explainObject('files/stray/a')).toMatchObject({ verdict: 'orphan', reasons: [] })
    expect(await manager.explainObject('snapshots/999/lists/999.txt')).toMatchObject({ verdict: 'orphan' })
    const own = (await list(objects, 'snapshots/')).find((k) => k.includes('/metadata/'))!
    expect(await manager.explainObject(own)).toMatchObject({ verdict: 'snapshot', reasons: [{ kind: 'snapshot', id: info.id }] })

    // Agreement: what the explanations say GC deletes is what the next pass deletes.
    const before = await verdicts()
    const doomed = [...before].filter(([, e]) => e.verdict === 'collectable' || e.verdict === 'orphan').map(([k]) => k).sort()
    expect(doomed).toEqual([...keysOf(gone), 'files/stray/a', 'snapshots/999/lists/999.txt'].sort())
    await manager.runGc()
    const after = [...(await list(objects)), ...(await list(objects, 'snapshots/'))]
    expect([...before.keys()].filter((k) => !after.includes(k)).sort()).toEqual(doomed)
  })

  it('gives grace with its end while a drop or an unknown file is recent', async () => {
    env = await gcEnv({ dropGraceMs: 60_000, orphanGraceMs: 120_000 })
    const { manager, objects, clock } = env
    clock.set(Date.now() + 1_000)
    const c = await collection(manager)
    const s = await segment(manager, objects, c)
    await manager.catalog.dropSegment(s.id)
    const droppedAt = (await manager.catalog.getSegment(s.id)).droppedAt!
    expect(await manager.explainObject(keysOf(s)[0])).toMatchObject({ verdict: 'grace', reasons: [{ kind: 'segment', id: s.id }, { kind: 'grace', until: droppedAt + 60_000 }] })
    await objects.put('files/stray/b', new Uint8Array(4))
    const stray = (await objects.head('files/stray/b'))!
    expect(await manager.explainObject('files/stray/b')).toMatchObject({ verdict: 'grace', reasons: [{ kind: 'grace', until: stray.lastModified + 120_000 }] })
    // An absent key is explained as if it appeared now.
    expect(await manager.explainObject('files/not/there')).toMatchObject({ exists: false, verdict: 'grace' })
    expect((await manager.runGc()).deletedObjects).toBe(0)
  })

  it('rejects keys GC does not manage (INVALID_ARGUMENT) and malformed keys', async () => {
    env = await gcEnv()
    await expect(env.manager.explainObject('elsewhere/x')).rejects.toSatisfy((e: unknown) => SnapshotError.is(e, 'INVALID_ARGUMENT'))
    await expect(env.manager.explainObject('')).rejects.toSatisfy((e: unknown) => SnapshotError.is(e, 'INVALID_ARGUMENT'))
    await expect(env.manager.explainObject('/abs')).rejects.toSatisfy((e: unknown) => SnapshotError.is(e, 'INVALID_ARGUMENT'))
  })
})
