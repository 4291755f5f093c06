import type { ObjectStore } from '../../src/storage/object-store.js'

/**
 * `inner` with some methods replaced: every other property reads through to `inner` (methods
 * bound to it), so a test wraps only what it slows, gates, fails or counts.
 */
export function overrideObjects<T extends ObjectStore>(inner: T, overrides: Partial<Record<keyof ObjectStore, unknown>>): T {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof ObjectStore]
      const value = Reflect.get(target, prop, receiver) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
}
