import { describe, expect, it } from 'vitest'
import { hashStream, verifiedBody } from '../../src/repository/sha256.js'
import { code } from '../snapshot/env.js'
import { drain, sha256Of as sha } from './helpers.js'

/** A body of `chunks` that records whether it was closed before its end. */
function body(chunks: Uint8Array[]): AsyncIterable<Uint8Array> & { closedEarly: boolean; pulled: number } {
  const b = {
    closedEarly: false,
    pulled: 0,
    async *[Symbol.asyncIterator]() {
      let done = false
      try {
        for (const c of chunks) {
          b.pulled++
          yield c
        }
        done = true
      } finally {
        if (!done) b.closedEarly = true
      }
    },
  }
  return b
}

const a = new Uint8Array([1, 2, 3])
const b = new Uint8Array([4, 5])
const c = new Uint8Array([6])

describe('hashStream', () => {
  it('hashes a one-chunk body (off the event loop) and hands back that chunk', async () => {
    const r = await hashStream(body([a]))
    expect(r).toEqual({ sha256: sha(a), size: 3, whole: a })
    expect(r.whole).toBe(a)
  })

  it('hashes a body of several chunks incrementally, without a whole chunk', async () => {
    expect(await hashStream(body([a, b, c]))).toEqual({ sha256: sha(a, b, c), size: 6 })
  })

  it('hashes an empty body', async () => {
    expect(await hashStream(body([]))).toMatchObject({ sha256: sha(), size: 0 })
  })

  it('rejects with the failure of the body', async () => {
    const failing = {
      async *[Symbol.asyncIterator]() {
        yield a
        throw new Error('disk gone')
      },
    }
    await expect(hashStream(failing)).rejects.toThrow('disk gone')
  })
})

describe('verifiedBody', () => {
  it('passes the chunks of a body that has the size and SHA-256 recorded, one chunk or several', async () => {
    expect(await drain(verifiedBody(body([a]), { size: 3, sha256: sha(a) }, 'f'))).toEqual([a])
    expect(await drain(verifiedBody(body([a, b, c]), { size: 6, sha256: sha(a, b, c) }, 'f'))).toEqual([a, b, c])
    expect(await drain(verifiedBody(body([]), { size: 0, sha256: sha() }, 'f'))).toEqual([])
  })

  it('a one-chunk body with another SHA-256 or size is refused before anything is passed on', async () => {
    const out: Uint8Array[] = []
    await expect(drain(verifiedBody(body([a]), { size: 3, sha256: sha(b) }, 'f'), out)).rejects.toEqual(code('CORRUPT'))
    await expect(drain(verifiedBody(body([a]), { size: 2, sha256: sha(a) }, 'f'), out)).rejects.toEqual(code('CORRUPT'))
    await expect(drain(verifiedBody(body([a]), { size: 4, sha256: sha(a) }, 'f'), out)).rejects.toEqual(code('CORRUPT'))
    expect(out).toEqual([])
  })

  it('a longer body is refused at its end (other SHA-256, shorter) or as soon as it is larger than recorded', async () => {
    await expect(drain(verifiedBody(body([a, b, c]), { size: 6, sha256: sha(a, b) }, 'f'))).rejects.toEqual(code('CORRUPT'))
    await expect(drain(verifiedBody(body([a, b, c]), { size: 7, sha256: sha(a, b, c) }, 'f'))).rejects.toEqual(code('CORRUPT'))
    const long = body([a, b, c, a, b])
    const out: Uint8Array[] = []
    await expect(drain(verifiedBody(long, { size: 4, sha256: sha(a, b, c, a, b) }, 'f'), out)).rejects.toEqual(code('CORRUPT'))
    expect(out).toEqual([a])
    expect(long.pulled).toBe(2)
    expect(long.closedEarly).toBe(true)
  })

  it('a consumer that stops early closes the body', async () => {
    const src = body([a, b, c])
    for await (const chunk of verifiedBody(src, { size: 6, sha256: sha(a, b, c) }, 'f')) {
      expect(chunk).toBe(a)
      break
    }
    expect(src.closedEarly).toBe(true)
  })
})
