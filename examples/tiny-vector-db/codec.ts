import { createHash } from 'node:crypto'

/**
 * Byte encodings of the tiny vector database's files. Every number is little-endian,
 * whatever the machine, so a file written on one host reads the same on another.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Int64 values as little-endian bytes (an insert binlog or deltalog of the primary key). */
export function encodeInt64(values: BigInt64Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice()
  const out = new Uint8Array(values.length * 8)
  const view = new DataView(out.buffer)
  for (let i = 0; i < values.length; i++) view.setBigInt64(i * 8, values[i], true)
  return out
}

/** Reads {@link encodeInt64} bytes back. */
export function decodeInt64(bytes: Uint8Array): BigInt64Array {
  if (bytes.byteLength % 8 !== 0) throw new Error(`an Int64 file must hold a multiple of 8 bytes, got ${bytes.byteLength}`)
  const out = new BigInt64Array(bytes.byteLength / 8)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i < out.length; i++) out[i] = view.getBigInt64(i * 8, true)
  return out
}

/** Float32 values as little-endian bytes (an insert binlog of a FloatVector field). */
export function encodeFloat32(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice()
  const out = new Uint8Array(values.length * 4)
  const view = new DataView(out.buffer)
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true)
  return out
}

/** Reads {@link encodeFloat32} bytes back. */
export function decodeFloat32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new Error(`a Float32 file must hold a multiple of 4 bytes, got ${bytes.byteLength}`)
  const out = new Float32Array(bytes.byteLength / 4)
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes)
    return out
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true)
  return out
}

/** The `sha256:<hex>` checksum vecsnap's `verifySnapshot` recomputes. */
export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** Concatenates byte arrays. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.byteLength
  }
  return out
}

/** Text as UTF-8 bytes. */
export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value))
}

/** UTF-8 JSON bytes back to a value. */
export function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(new TextDecoder().decode(bytes)) as T
}
