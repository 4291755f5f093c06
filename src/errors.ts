/**
 * Stable error codes of vecsnap (SPEC section 8). Codes are the API; messages may change.
 */
export type SnapshotErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'IN_USE'
  | 'CORRUPT'
  | 'UNSUPPORTED_VERSION'
  | 'RESTORE_FAILED'
  | 'ABORTED'
  | 'NOT_OPEN'
  | 'IO_ERROR'

/** Every code, in SPEC order. */
export const ERROR_CODES: readonly SnapshotErrorCode[] = Object.freeze([
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'INVALID_ARGUMENT',
  'FAILED_PRECONDITION',
  'IN_USE',
  'CORRUPT',
  'UNSUPPORTED_VERSION',
  'RESTORE_FAILED',
  'ABORTED',
  'NOT_OPEN',
  'IO_ERROR',
])

/** Options accepted by {@link SnapshotError}. */
export interface SnapshotErrorOptions {
  /** The original failure (a backend error, an AbortSignal reason, …). */
  cause?: unknown
  /** Extra machine-readable facts, e.g. the missing keys of a `CORRUPT` error. */
  details?: Record<string, unknown>
}

/**
 * The brand of every SnapshotError, in the global symbol registry so that all copies of
 * vecsnap share it: the ESM and the CommonJS build, and two versions that npm installed
 * side by side. `SnapshotError.is()` and `instanceof SnapshotError` check the brand, not
 * the class, so an error made by another copy is still recognised.
 */
const BRAND = Symbol.for('vecsnap.SnapshotError')

function isBranded(value: unknown): value is SnapshotError {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true
}

/**
 * The one error class vecsnap rejects with. Check `code`, not the message.
 *
 * `instanceof SnapshotError` and `SnapshotError.is()` also recognise errors made by another
 * copy of vecsnap (the other module format, another installed version), by a
 * `Symbol.for('vecsnap.SnapshotError')` brand.
 *
 * @example
 * try { await manager.dropSnapshot('nightly') } catch (err) {
 *   if (SnapshotError.is(err, 'IN_USE')) console.log('a restore still reads it')
 * }
 */
export class SnapshotError extends Error {
  /** Stable code, see SPEC section 8. */
  readonly code: SnapshotErrorCode
  /** Extra machine-readable facts. */
  readonly details?: Record<string, unknown>

  /** An error with a stable `code`; `options.cause` is the original failure. */
  constructor(code: SnapshotErrorCode, message: string, options: SnapshotErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'SnapshotError'
    this.code = code
    if (options.details !== undefined) this.details = options.details
  }

  static {
    Object.defineProperty(this.prototype, BRAND, { value: true })
  }

  /** True when `err` is a SnapshotError of any copy of vecsnap (optionally with the given code). */
  static is(err: unknown, code?: SnapshotErrorCode): err is SnapshotError {
    return isBranded(err) && (code === undefined || err.code === code)
  }

  /**
   * `err instanceof SnapshotError` is true for a SnapshotError of any copy of vecsnap. A
   * subclass keeps the ordinary prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): value is SnapshotError {
    return this === SnapshotError ? isBranded(value) : Function.prototype[Symbol.hasInstance].call(this, value)
  }
}

/** Throws `ABORTED` when the signal has fired. Use on entry and between phases. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal)
}

/** Builds the `ABORTED` error for a fired signal, keeping its reason as `cause`. */
export function abortError(signal: AbortSignal | undefined): SnapshotError {
  return new SnapshotError('ABORTED', 'the operation was aborted', { cause: signal?.reason })
}

/**
 * Wraps a backend failure as `IO_ERROR`, leaving SnapshotErrors as they are and
 * mapping AbortError-like failures to `ABORTED`.
 */
export function toIoError(err: unknown, what: string, signal?: AbortSignal): SnapshotError {
  if (err instanceof SnapshotError) return err
  if (signal?.aborted || (err instanceof Error && err.name === 'AbortError')) {
    return new SnapshotError('ABORTED', 'the operation was aborted', { cause: err })
  }
  const detail = err instanceof Error ? err.message : String(err)
  return new SnapshotError('IO_ERROR', `${what} failed: ${detail}`, { cause: err })
}
