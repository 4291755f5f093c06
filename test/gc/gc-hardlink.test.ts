import { afterEach, describe, expect, it } from 'vitest'
import { collection, exists, gcEnv, keysOf, list, segment, setMtime, type GcEnv } from './gc-env.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** Lets time pass, so the file's ctime (which a test cannot set) is older than what follows. */
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('GC and hard links', () => {
  let env: GcEnv | undefined

  afterEach(async () => {
    await env?.dispose()
    env = undefined
  })

  it('keeps a file the host hard-linked from an old file a moment ago and has not recorded yet, for orphanGraceMs', async () => {
    env = await gcEnv({ orphanGraceMs: HOUR })
    const { manager, objects } = env
    const c = await collection(manager)
    const seg = await segment(manager, objects, c, { indexes: false })
    // The host wrote this file two days ago.
    const source = keysOf(seg, 'binlog')[0]
    await setMtime(env.root, source, Date.now() - 2 * DAY)
    // setMtime moved the file's ctime to now: let it age, so only the link can make the file recent.
    await pause(300)
    const linkedAt = Date.now()
    // Now it links the file to a new key (as a host does to reuse a file), not recorded in the catalog yet.
    const linked = 'files/insert_log/1/2/3/4/linked-now'
    await objects.copy(source, linked, { mode: 'link' })
    // GC runs at a moment when the link is still within its grace, but the file's earlier ctime (and mtime) are not.
    env.clock.set(linkedAt + HOUR - 100)
    expect(await manager.runGc()).toMatchObject({ orphansDeleted: 0, keptForGrace: 1 })
    expect(await exists(objects, linked)).toBe(true)
    expect(await exists(objects, source)).toBe(true)

    // Once the link is older than the grace and still unrecorded, it is an orphan like any other.
    env.clock.advance(200)
    expect(await manager.runGc()).toMatchObject({ orphansDeleted: 1, deletedObjects: 1 })
    expect(await exists(objects, linked)).toBe(false)
    expect(await list(objects)).toEqual(keysOf(seg).sort())
  })
})
