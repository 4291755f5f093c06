import { afterEach, describe, expect, it } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { collection, exists, gcEnv, keysOf, list, put, segment, type GcEnv } from './gc-env.js'

/** An ObjectStore that holds every `put` under `snapshots/` until released. */
function gatedStore(inner: ObjectStore): { store: ObjectStore; hold(): void; release(): void; waiting: Promise<void> } {
  let gate: Promise<void> | undefined
  let open: (() => void) | undefined
  let signalWaiting: () => void = () => undefined
  const waiting = new Promise<void>((resolve) => (signalWaiting = resolve))
  const store: ObjectStore = {
    capabilities: inner.capabilities,
    async put(k, b, o) {
      // The metadata JSON is written after the pin batch: the create holds its pins here.
      if (gate !== undefined && k.includes('/metadata/')) {
        signalWaiting()
        await gate
      }
      return inner.put(k, b, o)
    },
    get: (k, o) => inner.get(k, o),
    head: (k, o) => inner.head(k, o),
    list: (p, o) => inner.list(p, o),
    copy: (a, b, o) => inner.copy(a, b, o),
    delete: (k, o) => inner.delete(k, o),
  }
  return {
    store,
    hold() {
      gate = new Promise((resolve) => (open = resolve))
    },
    release() {
      open?.()
      gate = undefined
    },
    waiting,
  }
}

describe('GC guards, dry run and the loop', () => {
  let env: GcEnv

  afterEach(async () => {
    await env.dispose()
  })

  it('dry run reports what a real pass deletes, and deletes nothing', async () => {
    env = await gcEnv()
    const { manager } = env
    const c = await collection(manager)
    const pinned = await segment(manager, env.objects, c)
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 's' })
    const gone = await segment(manager, env.objects, c)
    await manager.catalog.dropSegment(pinned.id)
    await manager.catalog.dropSegment(gone.id)
    await put(env.objects, 'files/stray/a', 10)
    const before = await list(env.objects)

    const dry = await manager.runGc({ dryRun: true })
    expect(dry).toEqual({ deletedObjects: keysOf(gone).length + 1, deletedBytes: keysOf(gone).length * 32 + 10, keptForSnapshots: keysOf(pinned).length, keptForGrace: 0, orphansDeleted: 1, dryRun: true })
    expect(await list(env.objects)).toEqual(before)
    expect((await manager.catalog.getSegment(gone.id)).state).toBe('dropped')

    const real = await manager.runGc()
    expect(real).toEqual({ ...dry, dryRun: false })
    expect(await list(env.objects)).toEqual(keysOf(pinned).sort())
  })

  it('aborts with CORRUPT, deleting nothing, when an object a committed snapshot references is missing', async () => {
    env = await gcEnv()
    const { manager } = env
    const c = await collection(manager)
    const seg = await segment(manager, env.objects, c)
    const gone = await segment(manager, env.objects, c)
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 's' })
    await manager.catalog.dropSegment(gone.id)
    await manager.dropSnapshot('s')
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 's2' })
    await put(env.objects, 'files/stray/a')
    const lost = keysOf(seg, 'statslog')[0]
    const lost2 = keysOf(seg, 'index')[0]
    await env.objects.delete([lost, lost2])
    const before = await list(env.objects)

    for (const dryRun of [false, true]) {
      const err = await manager.runGc({ dryRun }).catch((e: unknown) => e)
      expect(SnapshotError.is(err, 'CORRUPT')).toBe(true)
      expect((err as SnapshotError).details?.missing).toEqual([lost, lost2].sort())
      expect((err as Error).message).toContain(lost)
    }
    expect(await list(env.objects)).toEqual(before)
    expect((await manager.catalog.getSegment(gone.id)).state).toBe('dropped')

    // Put back, GC proceeds.
    await put(env.objects, lost)
    await put(env.objects, lost2)
    expect(await manager.runGc()).toMatchObject({ deletedObjects: keysOf(gone).length + 1 })
  })

  it('reports a committed manifest deleted out of band even when an earlier pass cached it', async () => {
    env = await gcEnv()
    const { manager } = env
    const c = await collection(manager)
    await segment(manager, env.objects, c)
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 's' })
    await manager.runGc() // reads (and caches) the manifest
    const manifest = (await list(env.objects, 'snapshots/')).find((k) => k.endsWith('.avro'))!
    await env.objects.delete([manifest])
    const err = await manager.runGc().catch((e: unknown) => e)
    expect(SnapshotError.is(err, 'CORRUPT')).toBe(true)
    expect((err as SnapshotError).details?.missing).toEqual([manifest])
  })

  it('the loop runs every gcIntervalMs, emits gcCompleted, and reports CORRUPT through loopError', async () => {
    // A host writes a file before it records it: with the loop running, only the orphan
    // grace keeps such a file alive in between, so it cannot be 0 here.
    env = await gcEnv({ gcIntervalMs: 20, orphanGraceMs: 3_600_000 })
    const { manager } = env
    const c = await collection(manager)
    const seg = await segment(manager, env.objects, c)
    await manager.catalog.dropSegment(seg.id)
    const report = await new Promise((resolve) => manager.once('gcCompleted', resolve))
    expect(report).toMatchObject({ dryRun: false })
    await expect.poll(() => list(env.objects)).toEqual([])

    const live = await segment(manager, env.objects, c)
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 's' })
    await env.objects.delete([keysOf(live)[0]])
    const [error, context] = await new Promise<[Error, { loop: string }]>((resolve) => manager.once('loopError', (e, ctx) => resolve([e, ctx])))
    expect(context).toEqual({ loop: 'gc' })
    expect(SnapshotError.is(error, 'CORRUPT')).toBe(true)
    expect((error as SnapshotError).details?.missing).toEqual([keysOf(live)[0]])
    // The loop keeps running.
    await put(env.objects, keysOf(live)[0])
    await new Promise((resolve) => manager.once('gcCompleted', resolve))
  })

  it('close() stops the loop and waits for the pass under way; runGc rejects NOT_OPEN outside open', async () => {
    const meta = new MemoryMetaStore()
    env = await gcEnv({ gcIntervalMs: 10 })
    const idle = new SnapshotManager({ meta, objects: env.objects, gcIntervalMs: 0 })
    await expect(idle.runGc()).rejects.toMatchObject({ code: 'NOT_OPEN' })
    await idle.open()
    expect(await idle.runGc()).toMatchObject({ deletedObjects: 0 })
    await idle.close()
    await expect(idle.runGc()).rejects.toMatchObject({ code: 'NOT_OPEN' })

    let passes = 0
    env.manager.on('gcCompleted', () => passes++)
    await new Promise((resolve) => env.manager.once('gcCompleted', resolve))
    await env.manager.close()
    const after = passes
    await new Promise((resolve) => setTimeout(resolve, 60))
    expect(passes).toBe(after)
  })

  it('rejects ABORTED when the signal fires and bad options with TypeError', async () => {
    env = await gcEnv()
    const controller = new AbortController()
    controller.abort()
    await expect(env.manager.runGc({ signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' })
    await expect(env.manager.runGc({ dryRun: 'yes' as never })).rejects.toBeInstanceOf(TypeError)
  })

  it.each(['list', 'manifest'] as const)('a snapshot dropped while GC reads its %s is no corruption', async (what) => {
    let hold: Promise<void> | undefined
    let release: () => void = () => undefined
    let reached: () => void = () => undefined
    const atGate = new Promise<void>((resolve) => (reached = resolve))
    const gateOn = (armed: boolean): Promise<void> | undefined => {
      if (!armed || hold === undefined) return undefined
      const h = hold
      hold = undefined
      reached()
      return h
    }
    env = await gcEnv({}, (inner): ObjectStore => ({
      capabilities: inner.capabilities,
      put: (k, b, o) => inner.put(k, b, o),
      async get(k, o) {
        await gateOn((what === 'manifest' && k.endsWith('.avro')) || (what === 'list' && k.endsWith('.txt')))
        return inner.get(k, o)
      },
      head: (k, o) => inner.head(k, o),
      list: (p, o) => inner.list(p, o),
      copy: (a, b, o) => inner.copy(a, b, o),
      delete: (k, o) => inner.delete(k, o),
    }))
    const { manager } = env
    const c = await collection(manager)
    const seg = await segment(manager, env.objects, c)
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 'going' })
    await manager.catalog.dropSegment(seg.id)
    hold = new Promise((resolve) => (release = resolve))
    const gc = manager.runGc()
    await atGate
    await manager.dropSnapshot('going')
    release()
    // No CORRUPT: the object vanished because the snapshot was dropped; the pass reads the
    // records again, finds none, and collects the dropped segment's files.
    const report = await gc
    expect(report.deletedObjects).toBe(keysOf(seg).length)
    const next = await manager.runGc()
    expect(report.deletedObjects + next.deletedObjects).toBe(keysOf(seg).length)
    expect(await list(env.objects)).toEqual([])
  })

  it('keeps a segment a pending snapshot pinned, even after it is dropped mid-create', async () => {
    let gated!: ReturnType<typeof gatedStore>
    env = await gcEnv({}, (inner) => (gated = gatedStore(inner)).store)
    const { manager } = env
    const c = await collection(manager)
    const seg = await segment(manager, env.objects, c)
    gated.hold()
    const creating = manager.createSnapshot({ collectionName: c.name, snapshotName: 'slow' })
    await gated.waiting
    await manager.catalog.dropSegment(seg.id)
    const report = await manager.runGc()
    expect(report).toMatchObject({ deletedObjects: 0, keptForSnapshots: keysOf(seg).length })
    for (const k of keysOf(seg)) expect(await exists(env.objects, k)).toBe(true)
    gated.release()
    await creating
    expect((await manager.verifySnapshot('slow')).ok).toBe(true)
    await manager.dropSnapshot('slow')
    expect(await manager.runGc()).toMatchObject({ deletedObjects: keysOf(seg).length })
  })

  it('never deletes what an unfinished restore job writes, even with a zero orphan grace', async () => {
    let release: () => void = () => undefined
    const gate = new Promise<void>((resolve) => (release = resolve))
    let copies = 0
    env = await gcEnv({}, (inner): ObjectStore => ({
      capabilities: inner.capabilities,
      put: (k, b, o) => inner.put(k, b, o),
      get: (k, o) => inner.get(k, o),
      head: (k, o) => inner.head(k, o),
      list: (p, o) => inner.list(p, o),
      async copy(a, b, o) {
        const info = await inner.copy(a, b, o)
        if (++copies === 3) await gate
        return info
      },
      delete: (k, o) => inner.delete(k, o),
    }))
    const { manager } = env
    const c = await collection(manager)
    const segs = [await segment(manager, env.objects, c), await segment(manager, env.objects, c)]
    await manager.createSnapshot({ collectionName: c.name, snapshotName: 's' })
    const job = await manager.restoreSnapshot({ snapshotName: 's', targetCollectionName: 'copy' })
    try {
      await expect.poll(() => copies, { timeout: 5000 }).toBeGreaterThanOrEqual(3)
      const report = await manager.runGc()
      expect(report.deletedObjects).toBe(0)
    } finally {
      release()
    }
    const done = await manager.waitForRestore(job)
    expect(done.state).toBe('completed')
    const restored = await manager.catalog.listSegments('copy')
    for (const s of restored) for (const k of keysOf(s)) expect(await exists(env.objects, k)).toBe(true)
    expect(restored.flatMap((s) => keysOf(s))).toHaveLength(segs.flatMap((s) => keysOf(s)).length)
    expect(await manager.runGc()).toMatchObject({ deletedObjects: 0 })
  })
})
