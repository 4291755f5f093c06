/**
 * src/errors.ts on its own: the `Symbol.for('vecsnap.SnapshotError')` brand behind
 * `instanceof SnapshotError` and `SnapshotError.is()` (test/package/entries.test.ts checks
 * the same across the built formats and a second installed copy).
 */
import { describe, expect, it, vi } from 'vitest'
import { SnapshotError, toIoError } from '../../src/errors.js'

/** A separately evaluated copy of src/errors.ts, as another copy of vecsnap would have. */
async function otherCopy(): Promise<typeof import('../../src/errors.js')> {
  vi.resetModules()
  return import('../../src/errors.js')
}

describe('SnapshotError brand', () => {
  it('recognises an error of another copy with instanceof and is(), and toIoError keeps it', async () => {
    const other = await otherCopy()
    expect(other.SnapshotError).not.toBe(SnapshotError)
    const err = new other.SnapshotError('FAILED_PRECONDITION', 'conflict', { details: { conflict: true } })
    expect(err instanceof SnapshotError).toBe(true)
    expect(SnapshotError.is(err, 'FAILED_PRECONDITION')).toBe(true)
    expect(SnapshotError.is(err, 'IO_ERROR')).toBe(false)
    expect(toIoError(err, 'batch')).toBe(err)
    expect(new SnapshotError('NOT_FOUND', 'x') instanceof other.SnapshotError).toBe(true)
  })

  it('does not recognise look-alikes or other values', () => {
    for (const value of [new Error('x'), { name: 'SnapshotError', code: 'NOT_FOUND', message: 'x' }, null, undefined, 'NOT_FOUND', 0]) {
      expect(value instanceof SnapshotError).toBe(false)
      expect(SnapshotError.is(value)).toBe(false)
    }
    expect(toIoError(new Error('disk'), 'write')).toMatchObject({ code: 'IO_ERROR', message: 'write failed: disk' })
  })

  it('keeps the brand off the instance’s own properties', () => {
    const err = new SnapshotError('NOT_FOUND', 'x', { details: { a: 1 } })
    expect(Object.getOwnPropertySymbols(err)).toEqual([])
    expect(JSON.parse(JSON.stringify(err))).toEqual({ name: 'SnapshotError', code: 'NOT_FOUND', details: { a: 1 } })
  })

  it('gives subclasses the ordinary instanceof', () => {
    class RestoreError extends SnapshotError {}
    const plain = new SnapshotError('RESTORE_FAILED', 'x')
    const sub = new RestoreError('RESTORE_FAILED', 'y')
    expect(sub instanceof SnapshotError).toBe(true)
    expect(sub instanceof RestoreError).toBe(true)
    expect(plain instanceof RestoreError).toBe(false)
  })
})
