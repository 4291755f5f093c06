import { SnapshotError } from '../errors.js'
import type { AbortOptions } from '../types.js'
import { META_LAYOUT_VERSION, keys } from './keys.js'
import { isMetaConflict, type MetaStore } from './meta-store.js'

/**
 * Checks the MetaStore layout version (`keys.layoutVersion`) on `open()`, and writes it
 * into a store that has none yet. A store written by a vecsnap with another layout rejects
 * with `UNSUPPORTED_VERSION`, before anything reads or writes the store's records.
 * @internal
 */
export async function checkLayoutVersion(meta: MetaStore, options: AbortOptions = {}): Promise<void> {
  const expected = String(META_LAYOUT_VERSION)
  for (let attempt = 1; ; attempt++) {
    const found = await meta.get(keys.layoutVersion, options)
    if (found === expected) return
    if (found !== undefined) {
      throw new SnapshotError(
        'UNSUPPORTED_VERSION',
        `the MetaStore holds vecsnap layout version ${JSON.stringify(found)}; this vecsnap reads layout ${expected}`,
        { details: { key: keys.layoutVersion, found, expected } },
      )
    }
    try {
      const shared = meta.capabilities.sharedConditionalBatch
      await meta.batch([{ type: 'put', key: keys.layoutVersion, value: expected }], shared ? { ...options, expect: [{ key: keys.layoutVersion, value: undefined }] } : options)
      return
    } catch (err) {
      // Another process wrote it first: read what it wrote.
      if (!isMetaConflict(err) || attempt >= 3) throw err
    }
  }
}
