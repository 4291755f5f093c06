import { describe, expect, it } from 'vitest'
import { SnapshotError } from '../../src/errors.js'
import { assembleManifest, decodeManifest, encodeManifest, encodeManifestBody, type ManifestRecord } from '../../src/format/manifest-codec.js'
import { ManifestWrites, type ManifestWrite } from '../../src/snapshot/manifest-writes.js'
import type { ObjectInfo, ObjectStore, PutOptions } from '../../src/storage/object-store.js'
import { manifestRecord } from '../helpers/seed.js'

/** The ManifestWrites queue of createSnapshot: concurrency, failure and stop. */

function manifest(id: number): ManifestRecord {
  return manifestRecord(id, id)
}

/** A write of a stored body (as a create hands over a segment's capture). */
const write = (i: number): ManifestWrite => {
  const body = encodeManifestBody(manifest(i + 1))
  return { key: `snapshots/1/manifests/9/${i + 1}.avro`, hash: body.hash, body }
}

/** A store whose puts wait until released, recording what they were given. */
class GatedPuts {
  readonly bodies = new Map<string, Uint8Array>()
  readonly options: PutOptions[] = []
  inFlight = 0
  maxInFlight = 0
  failKey: string | undefined
  readonly #waiting: (() => void)[] = []

  get store(): ObjectStore {
    return { put: (key: string, body: Uint8Array, options?: PutOptions) => this.put(key, body, options ?? {}) } as unknown as ObjectStore
  }

  async put(key: string, body: Uint8Array, options: PutOptions): Promise<ObjectInfo> {
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
      if (key === this.failKey) throw new SnapshotError('IO_ERROR', `put ${key} failed`)
      this.bodies.set(key, body)
      this.options.push(options)
      return { key, size: body.byteLength, lastModified: 0 }
    } finally {
      this.inFlight--
    }
  }

  /** Lets every waiting put go on, until none is left waiting. */
  async drain(): Promise<void> {
    for (let rounds = 0; rounds < 1000; rounds++) {
      await new Promise((r) => setImmediate(r))
      if (this.#waiting.length === 0 && this.inFlight === 0) return
      for (const go of this.#waiting.splice(0)) go()
    }
    throw new Error('puts never settled')
  }
}

describe('ManifestWrites', () => {
  it('writes a key queued again (a rescan recaptured it) after the earlier write of it, so the last content queued lands', async () => {
    const landed = new Map<string, Uint8Array>()
    const waiting: (() => void)[] = []
    let started = 0
    const store = {
      put: async (key: string, body: Uint8Array) => {
        started++
        await new Promise<void>((resolve) => waiting.push(resolve))
        landed.set(key, body)
        return { key, size: body.byteLength, lastModified: 0 }
      },
    } as unknown as ObjectStore
    const writes = new ManifestWrites(store, 4)
    const first = encodeManifestBody(manifest(1))
    const second = encodeManifestBody(manifestRecord(1, 999))
    writes.add({ key: 'snapshots/1/manifests/9/1.avro', hash: first.hash, body: first })
    writes.add({ key: 'snapshots/1/manifests/9/1.avro', hash: second.hash, body: second })
    const done = writes.finish()
    // Release the newest put first each round: two puts of one key in flight would land in reverse.
    for (let round = 0; round < 20 && (waiting.length > 0 || started < 2); round++) {
      await new Promise((r) => setImmediate(r))
      waiting.pop()?.()
    }
    await done
    expect(started).toBe(2)
    expect(decodeManifest(landed.get('snapshots/1/manifests/9/1.avro')!, 'k').numRows).toBe(999)
  })

  it('writes what it is given, at most `concurrency` at a time, as fresh puts, bodies assembled as encodeManifest would', async () => {
    const gate = new GatedPuts()
    const writes = new ManifestWrites(gate.store, 3)
    const prior = encodeManifest(manifest(99))
    for (let i = 0; i < 10; i++) writes.add(i === 4 ? { key: write(i).key, hash: prior.hash, encoded: prior } : write(i))
    const finished = writes.finish()
    await gate.drain()
    await finished
    expect(gate.maxInFlight).toBe(3)
    expect(gate.bodies.size).toBe(10)
    expect(gate.options.every((o) => o.fresh === true)).toBe(true)
    for (let i = 0; i < 10; i++) {
      const body = gate.bodies.get(write(i).key)!
      // A write that came encoded is written as it came.
      expect(decodeManifest(body).id).toBe(i === 4 ? 99 : i + 1)
      expect(Buffer.from(body)).toEqual(Buffer.from(i === 4 ? prior.bytes : encodeManifest(manifest(i + 1)).bytes))
      if (i !== 4) expect(Buffer.from(assembleManifest(write(i).body!).bytes)).toEqual(Buffer.from(body))
    }
  })

  it('finish() resolves at once with nothing to write', async () => {
    await expect(new ManifestWrites(new GatedPuts().store, 4).finish()).resolves.toBeUndefined()
  })

  it('stops starting writes after the first failure, and finish() rejects with it once none is in flight', async () => {
    const gate = new GatedPuts()
    gate.failKey = write(1).key
    const writes = new ManifestWrites(gate.store, 2)
    for (let i = 0; i < 8; i++) writes.add(write(i))
    let settled = false
    const finished = writes.finish().finally(() => {
      settled = true
    })
    finished.catch(() => undefined)
    await gate.drain()
    expect(settled).toBe(true)
    await expect(finished).rejects.toMatchObject({ code: 'IO_ERROR' })
    // Writes 0 and 1 ran together; 1 failed, so at most the one started alongside it landed after.
    expect(gate.bodies.size).toBeLessThanOrEqual(2)
    expect(gate.bodies.has(write(7).key)).toBe(false)
  })

  it('stop() starts nothing more and resolves only once the writes in flight settled', async () => {
    const gate = new GatedPuts()
    const writes = new ManifestWrites(gate.store, 2)
    for (let i = 0; i < 6; i++) writes.add(write(i))
    expect(gate.inFlight).toBe(2)
    let stopped = false
    const stopping = writes.stop().then(() => {
      stopped = true
    })
    await new Promise((r) => setImmediate(r))
    expect(stopped).toBe(false)
    writes.add(write(6))
    await gate.drain()
    await stopping
    expect(gate.inFlight).toBe(0)
    expect([...gate.bodies.keys()].sort()).toEqual([write(0).key, write(1).key].sort())
  })

  it('rejects ABORTED, and writes nothing more, once the signal fired', async () => {
    const gate = new GatedPuts()
    const controller = new AbortController()
    const writes = new ManifestWrites(gate.store, 1, controller.signal)
    for (let i = 0; i < 3; i++) writes.add(write(i))
    controller.abort()
    const finished = writes.finish()
    finished.catch(() => undefined)
    await gate.drain()
    await expect(finished).rejects.toMatchObject({ code: 'ABORTED' })
    expect(gate.bodies.size).toBeLessThanOrEqual(1)
  })
})
