import { describe, expect, it } from 'vitest'
import { MemoryMetaStore } from '../../src/meta/memory-meta-store.js'
import { SnapshotManager } from '../../src/snapshot-manager.js'
import { MemoryObjects } from '../helpers/memory-objects.js'

/**
 * Issue 15, defect 7: one rule for bad arguments. A value of the wrong type is programmer
 * misuse (`TypeError`); a value of the right type that breaks a rule is `INVALID_ARGUMENT`
 * (SPEC section 8: "bad option values").
 */
const base = () => ({ meta: new MemoryMetaStore(), objects: new MemoryObjects() })

describe('SnapshotManager options', () => {
  it.each([
    ['restoreConcurrency', 0],
    ['restoreConcurrency', 1.5],
    ['maxSegmentsPerCopyTask', 0],
    ['maxSegmentsPerCopyTask', 31],
    ['checkIntervalMs', -1],
    // Longer than a timer runs: Node would fire it at once, and the loop would spin.
    ['checkIntervalMs', 2 ** 31],
    ['gcIntervalMs', 2 ** 31],
    ['progressThrottleMs', 2 ** 31],
    ['scheduleIntervalMs', 2 ** 31],
    ['dropGraceMs', Number.NaN],
    ['copyMode', 'fast'],
  ])('%s: %j is INVALID_ARGUMENT', (name, value) => {
    expect(() => new SnapshotManager({ ...base(), [name]: value })).toThrow(expect.objectContaining({ name: 'SnapshotError', code: 'INVALID_ARGUMENT' }))
  })

  it.each([
    ['restoreConcurrency', '8'],
    ['gcIntervalMs', null],
    ['copyMode', 1],
    ['now', 'today'],
  ])('%s: %j (the wrong type) is a TypeError', (name, value) => {
    expect(() => new SnapshotManager({ ...base(), [name]: value } as never)).toThrow(TypeError)
  })

  it('a missing port is a TypeError', () => {
    expect(() => new SnapshotManager({ meta: new MemoryMetaStore() } as never)).toThrow(TypeError)
  })
})
