import { SnapshotError } from '../errors.js'

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

function invalid(what: string, value: unknown, why: string): SnapshotError {
  return new SnapshotError('INVALID_ARGUMENT', `invalid object ${what} ${show(value)}: ${why}`, { details: { [what]: value } })
}

/** Matches every path `segmentProblem` rejects (and some it accepts, such as `a/.b`). */
const SUSPECT = /[\\\0]|\/\/|^\/|\/$|^$|(?:^|\/)\./

/** Why `path` (no leading or trailing '/') is not a valid list of key segments, or `undefined`. */
function segmentProblem(path: string): string | undefined {
  // Fast path (every key of every call passes here): nothing that any rule below rejects.
  if (!SUSPECT.test(path)) return undefined
  if (path.includes('\\')) return 'it contains a backslash'
  if (path.includes('\0')) return 'it contains a NUL character'
  for (const part of path.split('/')) {
    if (part === '') return 'it has an empty segment'
    if (part === '.' || part === '..') return `it has a '${part}' segment`
  }
  return undefined
}

/**
 * Throws `INVALID_ARGUMENT` unless `key` is a valid object key: a non-empty string,
 * relative ('/'-separated, not starting or ending with '/'), with no empty, `.` or `..`
 * segment, no backslash and no NUL (SPEC section 4). Adapters call it on every key they
 * are given, so a key can never address anything outside the store.
 *
 * @example
 * validateObjectKey('files/insert_log/1/2/3/100/1') // ok
 * validateObjectKey('../etc/passwd')                // throws INVALID_ARGUMENT
 */
export function validateObjectKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw invalid('key', key, 'it is not a string')
  if (key === '') throw invalid('key', key, 'it is empty')
  if (key.startsWith('/')) throw invalid('key', key, 'it is absolute')
  if (key.endsWith('/')) throw invalid('key', key, "it ends with '/'")
  const why = segmentProblem(key)
  if (why !== undefined) throw invalid('key', key, why)
}

/**
 * Throws `INVALID_ARGUMENT` unless `prefix` is a valid list prefix: `''` (everything), or
 * a valid object key optionally followed by one '/' (e.g. `files/` or `files/insert_log/1`).
 */
export function validatePrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string') throw invalid('prefix', prefix, 'it is not a string')
  if (prefix === '') return
  if (prefix.startsWith('/')) throw invalid('prefix', prefix, 'it is absolute')
  const why = segmentProblem(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix)
  if (why !== undefined) throw invalid('prefix', prefix, why)
}

const COPY_MODES = new Set(['auto', 'link', 'copy'])

/** Throws a `TypeError` unless `body` is a Uint8Array (a Buffer is one). */
export function assertBody(body: unknown): asserts body is Uint8Array {
  if (!(body instanceof Uint8Array)) throw new TypeError(`Expected \`body\` to be a Uint8Array, got \`${show(body)}\``)
}

/** Throws `INVALID_ARGUMENT` unless `mode` is absent, `auto`, `link` or `copy`. */
export function assertCopyMode(mode: unknown): void {
  if (mode !== undefined && !COPY_MODES.has(mode as string)) {
    throw new SnapshotError('INVALID_ARGUMENT', `Expected \`mode\` to be 'auto', 'link' or 'copy', got \`${show(mode)}\``)
  }
}

/** Throws a `TypeError` unless `sizeBytes` (the size hint of `copy`) is absent or a non-negative safe integer. */
export function assertCopySizeHint(sizeBytes: unknown): asserts sizeBytes is number | undefined {
  if (sizeBytes !== undefined && !(typeof sizeBytes === 'number' && Number.isSafeInteger(sizeBytes) && sizeBytes >= 0)) {
    throw new TypeError(`Expected \`sizeBytes\` to be a non-negative safe integer, got \`${show(sizeBytes)}\``)
  }
}

/** Throws a `TypeError` unless `keys` is an array, then validates every key (nothing is deleted if one is bad). */
export function assertKeyList(keys: unknown): asserts keys is readonly string[] {
  if (!Array.isArray(keys)) throw new TypeError(`Expected \`keys\` to be an array, got \`${show(keys)}\``)
  for (const key of keys) validateObjectKey(key)
}

/** True when `key` passes {@link validateObjectKey}. */
export function isValidObjectKey(key: unknown): key is string {
  try {
    validateObjectKey(key)
    return true
  } catch {
    return false
  }
}

/** Maps UTF-16 code units so that comparing them orders strings as their UTF-8 bytes would. */
function utf8Rank(unit: number): number {
  // Surrogates (U+D800–U+DFFF) start 4-byte UTF-8 sequences, which sort after U+E000–U+FFFF.
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000
}

/**
 * Compares two keys in the order `list()` yields them: by their UTF-8 bytes, as S3 does.
 * For keys without characters above U+D7FF this is plain string order.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    return x >= 0xd800 && y >= 0xd800 ? utf8Rank(x) - utf8Rank(y) : x - y
  }
  return a.length - b.length
}
