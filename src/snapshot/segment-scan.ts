import { SnapshotError } from '../errors.js'
import { encodeManifest, manifestFileSize } from '../format/manifest-codec.js'
import { captureSegment, capturedBytes, readCapture } from '../format/segment-capture.js'
import type { CollectionInfo, SegmentInfo } from '../catalog-types.js'
import { idFromKey, keys } from '../meta/keys.js'
import { prefixRange } from '../meta/meta-store.js'
import type { MetaTxn } from '../meta/transaction.js'
import type { ManifestSource } from './manifest-writes.js'

/**
 * The scan of snapshot creation's phase 1 (see `snapshot-create.ts`): a collection's
 * flushed segments of live partitions, captured from the catalog's segment index, each
 * with the manifest to list for it and how to write that manifest.
 */

/** Segment records read concurrently when a capture cannot be used (files of a dropped index). */
const READ_CONCURRENCY = 64

/** A captured segment, before the manifest to list for it is decided. */
export interface Captured {
  segmentId: number
  hash: string
  manifestSize: number
  rows: number
  bytes: number
  builds: number[]
  /** How to write the manifest, when this snapshot writes it. */
  source: ManifestSource
}

/**
 * Reads the collection's segment index in one range read and captures its flushed
 * segments of live partitions: from the stored capture when every index it includes is
 * live, else (files of a dropped index) from the segment record, encoded without them.
 */
export async function scanSegments(tx: MetaTxn, collection: CollectionInfo, liveIndexIds: ReadonlySet<number>, onCapture: (c: Captured) => Promise<void>): Promise<Captured[]> {
  const livePartitions = new Set(collection.partitions.map((p) => p.id))
  const out: (Captured | undefined)[] = []
  /** Segments whose record must be read: position in `out`, ID. */
  const fromRecord: [number, number][] = []
  for await (const [key, value] of tx.iterate(prefixRange(keys.collectionSegmentPrefix(collection.id)))) {
    const segmentId = idFromKey(key)
    const capture = readCapture(value)
    if (capture === undefined) throw new SnapshotError('CORRUPT', `the catalog entry of segment ${segmentId} (${key}) is unreadable`, { details: { key } })
    if (capture.flushed === undefined || !livePartitions.has(capture.partitionId)) continue
    const f = capture.flushed
    if (f.indexIds.every((ix) => liveIndexIds.has(ix))) {
      const c: Captured = { segmentId, hash: f.manifest.hash, manifestSize: manifestFileSize(f.manifest), rows: f.rows, bytes: f.bytes, builds: f.builds, source: { body: f.manifest } }
      out.push(c)
      await onCapture(c)
    } else {
      fromRecord.push([out.length, segmentId])
      out.push(undefined)
    }
  }
  if (fromRecord.length > 0) {
    const values = await tx.getMany(fromRecord.map(([, id]) => keys.segment(id)), { concurrency: READ_CONCURRENCY })
    fromRecord.forEach(([at, segmentId], i) => {
      const value = values[i]
      if (value === undefined) throw new SnapshotError('CORRUPT', `segment ${segmentId} is in the collection's index but has no record`)
      const m = captureSegment(JSON.parse(value) as SegmentInfo, liveIndexIds)
      const builds: number[] = []
      const bytes = capturedBytes(m, builds)
      const encoded = encodeManifest(m)
      out[at] = { segmentId, hash: encoded.hash, manifestSize: encoded.bytes.byteLength, rows: m.numRows, bytes, builds, source: { encoded } }
    })
    for (const [at] of fromRecord) await onCapture(out[at] as Captured)
  }
  return out as Captured[]
}
