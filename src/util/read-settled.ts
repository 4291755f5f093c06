import { SnapshotError } from '../errors.js'

/** Attempts of a read over snapshot objects before a `CORRUPT` counts as damage. */
const SETTLE_ATTEMPTS = 3

/**
 * Runs `read`, and again when it fails `CORRUPT`: a snapshot's list or manifest disappears
 * legitimately when the snapshot is dropped between the read of its record and of the
 * object (the drop marks the record `deleting` first, so the next read sees that). One
 * still failing on the last attempt is real corruption. For whole reads over every
 * snapshot (GC's reference mark, space accounting).
 * @internal
 */
export async function readSettled<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read()
    } catch (err) {
      if (!SnapshotError.is(err, 'CORRUPT') || attempt >= SETTLE_ATTEMPTS) throw err
    }
  }
}
