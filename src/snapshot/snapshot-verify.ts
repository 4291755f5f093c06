import { createHash } from 'node:crypto'
import { SnapshotError, throwIfAborted } from '../errors.js'
import type { SegmentFile } from '../catalog-types.js'
import { segmentFiles } from '../meta/segment-files.js'
import type { ObjectStore } from '../storage/object-store.js'
import type { AbortOptions } from '../types.js'
import type { ManifestReader } from './manifest-reader.js'
import { readMetadata } from './manifest-reader.js'
import { forEachLimit } from '../util/for-each-limit.js'
import type { SnapshotList } from './snapshot-list.js'
import type { SnapshotRecord } from './snapshot-record.js'
import type { VerifyReport } from './snapshot-types.js'

/** Objects checked in parallel by `verifySnapshot`. */
export const VERIFY_CONCURRENCY = 16

/** Hash algorithms a `SegmentFile.checksum` of the form `<algorithm>:<hex>` may name. */
const CHECKSUM_ALGORITHMS: Record<string, string> = { sha256: 'sha256', md5: 'md5' }

/** Parsed checksum, or undefined for algorithms vecsnap cannot recompute (they are skipped). */
function parseChecksum(checksum: string | undefined): { algorithm: string; hex: string } | undefined {
  if (checksum === undefined) return undefined
  const i = checksum.indexOf(':')
  if (i === -1) return undefined
  const algorithm = CHECKSUM_ALGORITHMS[checksum.slice(0, i).toLowerCase()]
  if (algorithm === undefined) return undefined
  return { algorithm, hex: checksum.slice(i + 1).toLowerCase() }
}

type FileStatus = 'ok' | 'missing' | 'corrupt'

/** The distinct manifest keys of a list, in order. */
function manifestKeysOf(list: SnapshotList): string[] {
  const out = new Set<string>()
  for (let i = 0; i < list.count; i++) out.add(list.manifestKey(i))
  return [...out]
}

async function checkFile(objects: ObjectStore, file: SegmentFile, options: AbortOptions): Promise<FileStatus> {
  const head = await objects.head(file.key, options)
  if (head === undefined) return 'missing'
  if (head.size !== file.size) return 'corrupt'
  const sum = parseChecksum(file.checksum)
  if (sum === undefined) return 'ok'
  const bytes = await objects.get(file.key, options)
  if (bytes === undefined) return 'missing'
  const actual = createHash(sum.algorithm).update(bytes).digest('hex')
  return actual === sum.hex ? 'ok' : 'corrupt'
}

/**
 * Checks every data and index object a committed snapshot references: existence, size,
 * and the checksum where the host gave one (`sha256:<hex>`, `md5:<hex>`; other
 * algorithms are skipped). Absent manifests and metadata are reported as missing; a
 * manifest that does not decode rejects with `CORRUPT`, an unknown metadata version with
 * `UNSUPPORTED_VERSION`.
 */
export async function verifySnapshot(
  objects: ObjectStore,
  manifests: ManifestReader,
  r: SnapshotRecord,
  list: SnapshotList,
  options: AbortOptions = {},
): Promise<VerifyReport> {
  const { signal } = options
  const missing: string[] = []
  const corrupt: string[] = []
  try {
    await readMetadata(objects, r, options)
  } catch (err) {
    if (!SnapshotError.is(err, 'CORRUPT') || (err.details?.missing as string[] | undefined)?.[0] !== r.metadataKey) throw err
    missing.push(r.metadataKey)
  }
  const files = new Map<string, SegmentFile>()
  for await (const [key, m] of manifests.readAll(manifestKeysOf(list), VERIFY_CONCURRENCY, { signal, fresh: true })) {
    if (m === undefined) {
      missing.push(key)
      continue
    }
    for (const { file } of segmentFiles(m)) files.set(file.key, file)
  }
  throwIfAborted(signal)
  const checked = [...files.values()]
  await forEachLimit(checked, VERIFY_CONCURRENCY, async (file) => {
    const status = await checkFile(objects, file, options)
    if (status === 'missing') missing.push(file.key)
    else if (status === 'corrupt') corrupt.push(file.key)
  }, signal)
  missing.sort()
  corrupt.sort()
  return { ok: missing.length === 0 && corrupt.length === 0, checkedFiles: checked.length, missing, corrupt }
}
