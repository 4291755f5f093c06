import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { describe, expect, it, vi } from 'vitest'
import { S3ObjectStore } from '../../src/storage/s3-object-store.js'

// As when the optional peer @aws-sdk/lib-storage is not installed.
vi.mock('../../src/storage/s3-upload.js', () => ({ loadUpload: async () => undefined }))

const bucket = 'bkt'

function fake() {
  const puts: { input: any; bodyWasBytes: boolean; body: Buffer }[] = []
  const client = {
    async send(cmd: any) {
      if (!(cmd instanceof PutObjectCommand)) throw new Error(`unexpected ${cmd.constructor.name}`)
      const input = cmd.input as any
      const bodyWasBytes = input.Body instanceof Uint8Array
      const parts: Buffer[] = []
      if (bodyWasBytes) parts.push(Buffer.from(input.Body))
      else for await (const c of input.Body) parts.push(Buffer.from(c))
      const body = Buffer.concat(parts)
      expect(body.byteLength).toBe(input.ContentLength)
      puts.push({ input, bodyWasBytes, body })
      return {}
    },
  }
  return { puts, store: new S3ObjectStore({ client: client as unknown as S3Client, bucket }) }
}

async function* chunks(n: number, size: number) {
  for (let i = 0; i < n; i++) yield new Uint8Array(size).fill(i)
}

describe('S3ObjectStore.putStream without @aws-sdk/lib-storage', () => {
  it('streams a body of known size as one PutObject with its ContentLength', async () => {
    const { puts, store } = fake()
    expect(await store.putStream('k', chunks(4, 1000), { sizeBytes: 4000 })).toMatchObject({ size: 4000 })
    expect(puts).toHaveLength(1)
    expect(puts[0].bodyWasBytes).toBe(false)
    expect(puts[0].input.ContentLength).toBe(4000)
  })

  it('collects a body of unknown size in memory, then puts it', async () => {
    const { puts, store } = fake()
    await store.putStream('k', chunks(3, 10))
    expect(puts).toHaveLength(1)
    expect(puts[0].bodyWasBytes).toBe(true)
    expect(puts[0].body.byteLength).toBe(30)
  })

  it('rejects FAILED_PRECONDITION for a body above 5 GiB, sending nothing', async () => {
    const { puts, store } = fake()
    await expect(store.putStream('k', chunks(1, 1), { sizeBytes: 6 * 1024 ** 3 })).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' })
    expect(puts).toHaveLength(0)
  })
})
