import { randomUUID } from 'node:crypto'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { Etcd3 } from 'etcd3'
import { afterAll, describe, expect, it } from 'vitest'
import { LocalLeadership } from '../../src/cluster/local-leadership.js'
import type { DemotionReason, LeadershipHandlers, LoopLeadership } from '../../src/cluster/leadership.js'
import { EtcdLeadership, EtcdMetaStore } from '../../src/etcd.js'
import { startEtcd } from '../helpers/etcd.js'

/** Records what a leadership calls, in order, with timestamps. */
class Recorder implements LeadershipHandlers {
  readonly log: { event: string; at: number }[] = []
  readonly errors: Error[] = []
  #waiters: { event: string; resolve: () => void }[] = []
  electedDelayMs = 0
  failElected = false

  async elected(signal: AbortSignal): Promise<void> {
    if (this.electedDelayMs > 0) await new Promise((r) => setTimeout(r, this.electedDelayMs))
    if (this.failElected) throw new Error('recovery failed')
    signal.throwIfAborted()
    this.#push('elected')
  }

  demoted(reason: DemotionReason): void {
    this.#push(`demoted:${reason}`)
  }

  error(err: Error): void {
    this.errors.push(err)
  }

  get events(): string[] {
    return this.log.map((e) => e.event)
  }

  at(event: string): number {
    const hit = this.log.find((e) => e.event === event)
    if (hit === undefined) throw new Error(`no ${event} in ${this.events.join(', ')}`)
    return hit.at
  }

  /** Resolves when `event` has happened (now or later). */
  when(event: string, timeoutMs = 15_000): Promise<void> {
    if (this.log.some((e) => e.event === event)) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}; got ${this.events.join(', ')}`)), timeoutMs)
      this.#waiters.push({ event, resolve: () => (clearTimeout(timer), resolve()) })
    })
  }

  #push(event: string): void {
    this.log.push({ event, at: Date.now() })
    for (const w of this.#waiters.filter((w) => w.event === event)) w.resolve()
    this.#waiters = this.#waiters.filter((w) => w.event !== event)
  }
}

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('LocalLeadership', () => {
  it('elects at once, before campaign resolves, and demotes on resign', async () => {
    const leadership = new LocalLeadership()
    const rec = new Recorder()
    rec.electedDelayMs = 20
    await leadership.campaign(rec, { candidateId: 'a' })
    expect(rec.events).toEqual(['elected'])
    expect(leadership.leading).toBe(true)
    await leadership.resign()
    await leadership.resign()
    expect(rec.events).toEqual(['elected', 'demoted:resigned'])
    expect(leadership.leading).toBe(false)
  })

  it('rejects campaign with the error of elected() and can campaign again', async () => {
    const leadership = new LocalLeadership()
    const rec = new Recorder()
    rec.failElected = true
    await expect(leadership.campaign(rec, { candidateId: 'a' })).rejects.toThrow('recovery failed')
    expect(leadership.leading).toBe(false)
    await leadership.resign()
    expect(rec.events).toEqual([])
    rec.failElected = false
    await leadership.campaign(rec, { candidateId: 'a' })
    expect(rec.events).toEqual(['elected'])
  })

  it('refuses a second campaign and a missing candidate ID', async () => {
    const leadership = new LocalLeadership()
    await leadership.campaign(new Recorder(), { candidateId: 'a' })
    await expect(leadership.campaign(new Recorder(), { candidateId: 'b' })).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' })
    await expect(new LocalLeadership().campaign(new Recorder(), { candidateId: '' })).rejects.toThrow(TypeError)
    expect((leadership as LoopLeadership).candidates).toBeUndefined()
  })
})

const server = await startEtcd()

/** A TCP proxy in front of etcd whose connections can be cut, to take one client off the network. */
async function proxy(target: string): Promise<{ endpoint: string; cut(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(target)
  const sockets = new Set<Socket>()
  let cut = false
  const srv: Server = createServer((client) => {
    if (cut) return client.destroy()
    const upstream = connect(Number(port), hostname)
    sockets.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    const drop = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const address = srv.address() as { port: number }
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    cut() {
      cut = true
      for (const s of sockets) s.destroy()
    },
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise<void>((r) => srv.close(() => r()))
    },
  }
}

if ('skip' in server) {
  console.warn(`EtcdLeadership tests skipped: ${server.skip}`)
  describe.skip(`EtcdLeadership (skipped: ${server.skip})`, () => {
    it('needs etcd', () => undefined)
  })
} else {
  const { endpoint } = server
  const clients: Etcd3[] = []
  const client = (hosts = endpoint) => {
    const c = new Etcd3({ hosts })
    clients.push(c)
    return c
  }
  afterAll(async () => {
    for (const c of clients) c.close()
    await server.stop()
  })

  describe('EtcdLeadership', () => {
    it('elects one candidate; the next one takes over when it resigns', async () => {
      const prefix = `test/${randomUUID()}/l/`
      const a = new EtcdLeadership({ client: client(), prefix, ttlSeconds: 2 })
      const b = new EtcdLeadership({ client: client(), prefix, ttlSeconds: 2 })
      const ra = new Recorder()
      const rb = new Recorder()
      await a.campaign(ra, { candidateId: 'a' })
      expect(ra.events).toEqual(['elected'])
      await b.campaign(rb, { candidateId: 'b' })
      expect(rb.events).toEqual([])
      expect(await a.candidates()).toEqual(new Set(['a', 'b']))
      expect(await b.candidates()).toEqual(new Set(['a', 'b']))
      await a.resign()
      expect(ra.events).toEqual(['elected', 'demoted:resigned'])
      await rb.when('elected', 3_000)
      expect(await b.candidates()).toEqual(new Set(['b']))
      await b.resign()
      expect(rb.events).toEqual(['elected', 'demoted:resigned'])
      expect(ra.errors).toEqual([])
      expect(rb.errors).toEqual([])
    })

    it('hands over within the lease TTL when the leader vanishes without resigning', async () => {
      const prefix = `test/${randomUUID()}/l/`
      const p = await proxy(endpoint)
      try {
        const a = new EtcdLeadership({ client: client(p.endpoint), prefix, ttlSeconds: 2 })
        const b = new EtcdLeadership({ client: client(), prefix, ttlSeconds: 2 })
        const rb = new Recorder()
        await a.campaign(new Recorder(), { candidateId: 'a' })
        await b.campaign(rb, { candidateId: 'b' })
        const gone = Date.now()
        p.cut() // from etcd's side, like a SIGKILL: no revoke, no more keep-alives
        await rb.when('elected', 10_000)
        // The lease expires TTL after its last keep-alive (≤ 2 s), plus etcd's expiry check;
        // the slack is for a loaded CI box (etcd runs on the same cores). A lease of the
        // default 10 s, or no handover without a resign, would still fail this.
        expect(rb.at('elected') - gone).toBeLessThan(6_000)
        await b.resign()
        await a.resign()
      } finally {
        await p.close()
      }
    })

    it('a leader cut off from etcd steps down before the successor is elected', async () => {
      const prefix = `test/${randomUUID()}/l/`
      const p = await proxy(endpoint)
      try {
        const a = new EtcdLeadership({ client: client(p.endpoint), prefix, ttlSeconds: 3 })
        const b = new EtcdLeadership({ client: client(), prefix, ttlSeconds: 3 })
        const ra = new Recorder()
        const rb = new Recorder()
        await a.campaign(ra, { candidateId: 'a' })
        await b.campaign(rb, { candidateId: 'b' })
        p.cut()
        await rb.when('elected', 10_000)
        await ra.when('demoted:lease-expiring', 1_000)
        expect(ra.at('demoted:lease-expiring')).toBeLessThan(rb.at('elected'))
        await b.resign()
        await a.resign()
      } finally {
        await p.close()
      }
    })

    it('campaigns again after losing its lease, and resigning stops that', async () => {
      const prefix = `test/${randomUUID()}/l/`
      const c = client()
      const a = new EtcdLeadership({ client: c, prefix, ttlSeconds: 2 })
      const ra = new Recorder()
      await a.campaign(ra, { candidateId: 'a' })
      // Revoke the candidate's lease behind its back: etcd3 reports the loss.
      const leases = await c.leaseClient.leaseLeases()
      const keys = await c.namespace(prefix).getAll().prefix('election/loops/').keys()
      expect(keys).toHaveLength(1)
      for (const l of leases.leases) {
        const ttl = await c.leaseClient.leaseTimeToLive({ ID: l.ID, keys: true })
        if (ttl.keys.some((k) => k.toString().startsWith(prefix))) await c.leaseClient.leaseRevoke({ ID: l.ID })
      }
      await ra.when('demoted:lease-lost', 8_000)
      // Elected again on a new lease.
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not re-elected: ${ra.events.join(', ')}`)), 8_000)
        const poll = setInterval(() => {
          if (ra.events.filter((e) => e === 'elected').length === 2) {
            clearInterval(poll)
            clearTimeout(timer)
            resolve()
          }
        }, 50)
      })
      expect(ra.errors.length).toBeGreaterThan(0)
      await a.resign()
      expect(ra.events).toEqual(['elected', 'demoted:lease-lost', 'elected', 'demoted:resigned'])
      expect(await c.namespace(prefix).getAll().prefix('election/').keys()).toEqual([])
    })

    it('a waiting candidate that resigns leaves nothing open, so its process can exit', async () => {
      const prefix = `test/${randomUUID()}/l/`
      const p = await proxy(endpoint)
      try {
        const own = new Etcd3({ hosts: p.endpoint })
        const port = Number(new URL(p.endpoint).port)
        const sockets = () =>
          (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().filter((h) => (h as { remotePort?: number }).remotePort === port)
        const a = new EtcdLeadership({ client: client(), prefix, ttlSeconds: 2 })
        const b = new EtcdLeadership({ client: own, prefix, ttlSeconds: 2 })
        await a.campaign(new Recorder(), { candidateId: 'a' })
        await b.campaign(new Recorder(), { candidateId: 'b' }) // waits, watching the leader's key
        expect(sockets().length).toBeGreaterThan(0)
        await b.resign()
        own.close()
        await until(() => sockets().length === 0, 3_000)
        await a.resign()
      } finally {
        await p.close()
      }
    })

    it('rejects campaign when elected() fails at once, leaving no candidate key', async () => {
      const prefix = `test/${randomUUID()}/l/`
      const c = client()
      const a = new EtcdLeadership({ client: c, prefix, ttlSeconds: 2 })
      const ra = new Recorder()
      ra.failElected = true
      await expect(a.campaign(ra, { candidateId: 'a' })).rejects.toThrow('recovery failed')
      expect(await c.namespace(prefix).getAll().prefix('election/').keys()).toEqual([])
      ra.failElected = false
      await a.campaign(ra, { candidateId: 'a' })
      expect(ra.events).toEqual(['elected'])
      await a.resign()
    })

    it('rejects campaign with IO_ERROR when etcd is unreachable', async () => {
      const dead = new Etcd3({ hosts: 'http://127.0.0.1:1', dialTimeout: 500 })
      clients.push(dead)
      const a = new EtcdLeadership({ client: dead, ttlSeconds: 2 })
      await expect(a.campaign(new Recorder(), { candidateId: 'a' })).rejects.toMatchObject({ code: 'IO_ERROR' })
    })

    it('EtcdMetaStore#createLeadership elects under the store prefix', async () => {
      const prefix = `test/${randomUUID()}/`
      const meta = new EtcdMetaStore({ hosts: endpoint, prefix })
      await meta.open()
      const a = meta.createLeadership('loops', { ttlSeconds: 2 })
      expect(a.ttlSeconds).toBe(2)
      expect(meta.createLeadership('loops').ttlSeconds).toBe(10)
      const ra = new Recorder()
      await a.campaign(ra, { candidateId: 'x' })
      expect(ra.events).toEqual(['elected'])
      const keys = await client().getAll().prefix(prefix).keys()
      expect(keys).toHaveLength(1)
      expect(keys[0]).toMatch(new RegExp(`^${prefix}l/election/loops/`))
      await a.resign()
      await meta.close()
    })

    it('validates its options', () => {
      const c = client()
      expect(() => new EtcdLeadership({ client: c, ttlSeconds: 0 })).toThrow(TypeError)
      expect(() => new EtcdLeadership({ client: c, name: 'a/b' })).toThrow(TypeError)
      expect(() => new EtcdLeadership({ client: undefined as never })).toThrow(TypeError)
    })
  })
}
