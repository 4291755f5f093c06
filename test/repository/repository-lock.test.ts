import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { encodeLock, lockKey, REPOSITORY_LOCKS_PREFIX, type LockKind } from '../../src/repository/repository-format.js'
import { LOCK_RENEW_MS, LOCK_STALE_MS, RepositoryLock } from '../../src/repository/repository-lock.js'
import { RepositoryStore } from '../../src/repository/repository-store.js'
import type { ObjectStore } from '../../src/storage/object-store.js'
import { overrideObjects } from '../helpers/override-objects.js'
import { backends, code, worldPerTest } from '../snapshot/env.js'
import { fileCount, tempStores, type TempStores } from './helpers.js'

const keep = { keepLast: 1 }

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const o of store.list(prefix)) out.push(o.key)
  return out
}

/** Writes a lock record as another process would. */
async function foreignLock(store: ObjectStore, kind: LockKind, renewedAt: number, id = `other-${kind}`): Promise<string> {
  const key = lockKey(id)
  await store.put(key, encodeLock({ vecsnapLock: 1, kind, createdAt: renewedAt, renewedAt, holder: 'elsewhere:1' }))
  return key
}

/** Repository locks: an export and a prune never overlap (repository-lock.ts). */
describe('repository locks', () => {
  const w = worldPerTest(backends[0])
  let repo: TempStores
  beforeEach(async () => {
    repo = await tempStores()
    await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 's' })
  })
  afterEach(async () => {
    vi.useRealTimers()
    await repo.dispose()
  })

  it('an export is refused (IN_USE) while a prune holds the repository, writes no entry and leaves no lock of its own', async () => {
    await w.manager.exportSnapshot('s', { to: repo.objects })
    const held = await foreignLock(repo.objects, 'prune', w.clock.t)
    const err = await w.manager.exportSnapshot('s', { to: repo.objects, prefix: '' }).catch((e: unknown) => e)
    expect(err).toEqual(code('IN_USE'))
    expect((err as Error).message).toMatch(/in use by a prune \(elsewhere:1/)
    expect(await keysUnder(repo.objects, REPOSITORY_LOCKS_PREFIX)).toEqual([held])
    // A dry run reads only: it takes no lock.
    await expect(w.manager.pruneRepository({ store: repo.objects, policy: keep, dryRun: true })).resolves.toMatchObject({ dryRun: true })
  })

  it('a prune is refused (IN_USE) while an export runs, and deletes nothing; exports share the repository', async () => {
    // An earlier, aborted export left files no entry names yet: the running export finds them in place.
    let release: () => void = () => undefined
    const gate = new Promise<void>((resolve) => (release = resolve))
    let reached: () => void = () => undefined
    const atGate = new Promise<void>((resolve) => (reached = resolve))
    const gated = overrideObjects(repo.objects, {
      put: async (key: string, bytes: Uint8Array, options?: object) => {
        if (key.startsWith('files/')) {
          reached()
          await gate
        }
        return repo.objects.put(key, bytes, options)
      },
    })
    const running = w.manager.exportSnapshot('s', { to: gated })
    try {
      await atGate
      const before = await keysUnder(repo.objects, '')
      const err = await w.manager.pruneRepository({ store: repo.objects, policy: keep, dryRun: false }).catch((e: unknown) => e)
      expect(err).toEqual(code('IN_USE'))
      expect((err as Error).message).toMatch(/in use by an export/)
      // Nothing was deleted (the export's streamed copies go on meanwhile).
      expect(await keysUnder(repo.objects, '')).toEqual(expect.arrayContaining(before))
      // A second export shares the lock.
      await w.manager.createSnapshot({ collectionName: 'docs', snapshotName: 't' })
      await expect(w.manager.exportSnapshot('t', { to: repo.objects })).resolves.toMatchObject({ snapshotName: 't' })
    } finally {
      release()
      await running
    }
    expect(await keysUnder(repo.objects, REPOSITORY_LOCKS_PREFIX)).toEqual([])
    await expect(w.manager.pruneRepository({ store: repo.objects, policy: keep })).resolves.toMatchObject({ dryRun: false })
    expect(await w.manager.verifyRepository({ store: repo.objects, readData: 'all' })).toMatchObject({ ok: true })
  })

  it('a stale lock (not renewed for 30 minutes) is ignored, and a prune removes it', async () => {
    const stale = await foreignLock(repo.objects, 'prune', w.clock.t - LOCK_STALE_MS)
    const report = await w.manager.exportSnapshot('s', { to: repo.objects })
    expect(report.copiedFiles).toBe(await fileCount(w.manager, 'docs'))
    expect(await keysUnder(repo.objects, REPOSITORY_LOCKS_PREFIX)).toEqual([stale])
    await w.manager.pruneRepository({ store: repo.objects, policy: keep })
    expect(await keysUnder(repo.objects, REPOSITORY_LOCKS_PREFIX)).toEqual([])
  })

  it('a lock this build cannot read counts as held until its object is stale', async () => {
    await repo.objects.put(`${REPOSITORY_LOCKS_PREFIX}future.json`, Buffer.from(JSON.stringify({ vecsnapLock: 2, kind: 'compact' })))
    // The clock of this manager is in January 2026, the lock object was written now: it is live.
    await expect(w.manager.exportSnapshot('s', { to: repo.objects })).rejects.toEqual(code('IN_USE'))
    w.clock.t = Date.now() + LOCK_STALE_MS
    await expect(w.manager.exportSnapshot('s', { to: repo.objects })).resolves.toMatchObject({ snapshotName: 's' })
  })

  it('a lock failure of the export releases the snapshot hold', async () => {
    await foreignLock(repo.objects, 'prune', w.clock.t)
    await expect(w.manager.exportSnapshot('s', { to: repo.objects })).rejects.toEqual(code('IN_USE'))
    expect((await w.manager.describeSnapshot('s')).holds).toEqual([])
  })
})

describe('RepositoryLock', () => {
  let stores: TempStores
  let t: number
  const now = (): number => t
  beforeEach(async () => {
    stores = await tempStores()
    t = 1_000_000_000_000
  })
  afterEach(async () => {
    vi.useRealTimers()
    await stores.dispose()
  })

  it('two lockers that conflict and both write before either lists both back off; neither proceeds unseen', async () => {
    let arrived = 0
    let bothWrote: () => void = () => undefined
    const barrier = new Promise<void>((resolve) => (bothWrote = resolve))
    const racing = overrideObjects(stores.objects, {
      list: (prefix: string, options?: object) =>
        (async function* () {
          if (++arrived === 2) bothWrote()
          await barrier
          yield* stores.objects.list(prefix, options)
        })(),
    })
    const repo = new RepositoryStore(racing, '')
    const results = await Promise.allSettled([RepositoryLock.acquire(repo, 'export', now), RepositoryLock.acquire(repo, 'prune', now)])
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    expect(await keysUnder(stores.objects, REPOSITORY_LOCKS_PREFIX)).toEqual([])
  })

  it('is renewed while held; a lock that could not be renewed for 30 minutes refuses to go on (FAILED_PRECONDITION)', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    let failing = false
    const flaky = overrideObjects(stores.objects, {
      put: async (key: string, bytes: Uint8Array, options?: object) => {
        if (failing) throw new Error('unreachable')
        return stores.objects.put(key, bytes, options)
      },
    })
    const lock = await RepositoryLock.acquire(new RepositoryStore(flaky, ''), 'export', now)
    t += LOCK_RENEW_MS
    await vi.advanceTimersByTimeAsync(LOCK_RENEW_MS)
    await vi.waitFor(async () => {
      const bytes = await stores.objects.get(lock.key)
      expect(JSON.parse(Buffer.from(bytes!).toString()).renewedAt).toBe(t)
    })
    t += LOCK_STALE_MS - 1
    expect(() => lock.assertFresh()).not.toThrow()
    failing = true
    for (let i = 0; i < 6; i++) await vi.advanceTimersByTimeAsync(LOCK_RENEW_MS)
    t += 1
    expect(() => lock.assertFresh()).toThrow(expect.objectContaining({ code: 'FAILED_PRECONDITION' }))
    failing = false
    await lock.release()
    expect(await keysUnder(stores.objects, REPOSITORY_LOCKS_PREFIX)).toEqual([])
  })

  it('a lock that went stale stays lost: a renewal after the stale window does not make it fresh again', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const lock = await RepositoryLock.acquire(new RepositoryStore(stores.objects, ''), 'export', now)
    // Suspended (or unable to renew) for longer than the stale window: a prune may have run.
    t += LOCK_STALE_MS + 1
    await vi.advanceTimersByTimeAsync(LOCK_RENEW_MS)
    t += 1
    await vi.advanceTimersByTimeAsync(LOCK_RENEW_MS)
    expect(() => lock.assertFresh()).toThrow(expect.objectContaining({ code: 'FAILED_PRECONDITION' }))
    await lock.release()
  })

  it('release waits for a renewal under way, so no lock is left behind', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    let open: () => void = () => undefined
    let gate: Promise<void> | undefined
    const slow = overrideObjects(stores.objects, {
      put: async (key: string, bytes: Uint8Array, options?: object) => {
        await gate
        return stores.objects.put(key, bytes, options)
      },
    })
    const lock = await RepositoryLock.acquire(new RepositoryStore(slow, ''), 'prune', now)
    gate = new Promise((resolve) => (open = resolve))
    await vi.advanceTimersByTimeAsync(LOCK_RENEW_MS)
    const released = lock.release()
    open()
    await released
    expect(await keysUnder(stores.objects, REPOSITORY_LOCKS_PREFIX)).toEqual([])
  })
})
