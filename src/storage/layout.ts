/**
 * Object keys for segment files, following Milvus's key scheme under `files/`, and for
 * snapshot objects under `snapshots/` (SPEC sections 4 and 5). Every builder validates
 * that the IDs are positive safe integers and that names are single key segments.
 */

/** The IDs that place a segment's files. */
export interface SegmentKeyIds {
  collectionId: number
  partitionId: number
  segmentId: number
}

/** The IDs of a log file (binlog, deltalog, statslog, BM25 log) of one field. */
export interface FieldLogKeyIds extends SegmentKeyIds {
  fieldId: number
  logId: number
}

/** The IDs and name of a segment index file. */
export interface IndexFileKeyIds {
  buildId: number
  /** Index version; 1 for a first build. */
  version: number
  partitionId: number
  segmentId: number
  fileName: string
}

/** The IDs and name of a text or JSON-key index file of one field. */
export interface FieldIndexFileKeyIds extends SegmentKeyIds {
  buildId: number
  version: number
  fieldId: number
  fileName: string
}

/** Root of every segment file. GC treats objects under it as its own. */
export const FILES_PREFIX = 'files/'
/** Root of every snapshot object. GC never deletes under it. */
export const SNAPSHOTS_PREFIX = 'snapshots/'

function id(name: string, value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`Expected \`${name}\` to be a non-negative safe integer, got \`${String(value)}\``)
  }
  return String(value)
}

function segment(name: string, value: string): string {
  if (typeof value !== 'string' || value === '' || value === '.' || value === '..' || /[/\\\0]/.test(value)) {
    throw new TypeError(`Expected \`${name}\` to be one key segment, got \`${String(value)}\``)
  }
  return value
}

/** Key builders, also reachable as `catalog.layout`. */
export const layout = Object.freeze({
  /** `files/insert_log/{collectionId}/{partitionId}/{segmentId}/{fieldId}/{logId}` */
  insertLog(k: FieldLogKeyIds): string {
    return `${FILES_PREFIX}insert_log/${id('collectionId', k.collectionId)}/${id('partitionId', k.partitionId)}/${id('segmentId', k.segmentId)}/${id('fieldId', k.fieldId)}/${id('logId', k.logId)}`
  },
  /** `files/delta_log/{collectionId}/{partitionId}/{segmentId}/{fieldId}/{logId}` */
  deltaLog(k: FieldLogKeyIds): string {
    return `${FILES_PREFIX}delta_log/${id('collectionId', k.collectionId)}/${id('partitionId', k.partitionId)}/${id('segmentId', k.segmentId)}/${id('fieldId', k.fieldId)}/${id('logId', k.logId)}`
  },
  /** `files/stats_log/{collectionId}/{partitionId}/{segmentId}/{fieldId}/{logId}` */
  statsLog(k: FieldLogKeyIds): string {
    return `${FILES_PREFIX}stats_log/${id('collectionId', k.collectionId)}/${id('partitionId', k.partitionId)}/${id('segmentId', k.segmentId)}/${id('fieldId', k.fieldId)}/${id('logId', k.logId)}`
  },
  /** `files/bm25_stats/{collectionId}/{partitionId}/{segmentId}/{fieldId}/{logId}` */
  bm25Log(k: FieldLogKeyIds): string {
    return `${FILES_PREFIX}bm25_stats/${id('collectionId', k.collectionId)}/${id('partitionId', k.partitionId)}/${id('segmentId', k.segmentId)}/${id('fieldId', k.fieldId)}/${id('logId', k.logId)}`
  },
  /** `files/index_files/{buildId}/{version}/{partitionId}/{segmentId}/{fileName}` */
  indexFile(k: IndexFileKeyIds): string {
    return `${FILES_PREFIX}index_files/${id('buildId', k.buildId)}/${id('version', k.version)}/${id('partitionId', k.partitionId)}/${id('segmentId', k.segmentId)}/${segment('fileName', k.fileName)}`
  },
  /** `files/text_log/{buildId}/{version}/{collectionId}/{partitionId}/{segmentId}/{fieldId}/{fileName}` */
  textIndex(k: FieldIndexFileKeyIds): string {
    return `${FILES_PREFIX}text_log/${id('buildId', k.buildId)}/${id('version', k.version)}/${id('collectionId', k.collectionId)}/${id('partitionId', k.partitionId)}/${id('segmentId', k.segmentId)}/${id('fieldId', k.fieldId)}/${segment('fileName', k.fileName)}`
  },
  /** `files/json_key_index_log/{buildId}/{version}/{collectionId}/{partitionId}/{segmentId}/{fieldId}/{fileName}` */
  jsonKeyIndex(k: FieldIndexFileKeyIds): string {
    return `${FILES_PREFIX}json_key_index_log/${id('buildId', k.buildId)}/${id('version', k.version)}/${id('collectionId', k.collectionId)}/${id('partitionId', k.partitionId)}/${id('segmentId', k.segmentId)}/${id('fieldId', k.fieldId)}/${segment('fileName', k.fileName)}`
  },
  /** `snapshots/{collectionId}/metadata/{snapshotId}.json` */
  snapshotMetadata(collectionId: number, snapshotId: number): string {
    return `${SNAPSHOTS_PREFIX}${id('collectionId', collectionId)}/metadata/${id('snapshotId', snapshotId)}.json`
  },
  /** `snapshots/{collectionId}/lists/{snapshotId}.txt`: the snapshot's segment list (see `snapshot/snapshot-list.ts`). */
  snapshotList(collectionId: number, snapshotId: number): string {
    return `${SNAPSHOTS_PREFIX}${id('collectionId', collectionId)}/lists/${id('snapshotId', snapshotId)}.txt`
  },
  /** `snapshots/{collectionId}/manifests/{snapshotId}/`: the manifests a snapshot wrote itself. */
  snapshotManifestDir(collectionId: number, snapshotId: number): string {
    return `${SNAPSHOTS_PREFIX}${id('collectionId', collectionId)}/manifests/${id('snapshotId', snapshotId)}/`
  },
  /** `snapshots/{collectionId}/manifests/{snapshotId}/{segmentId}.avro` */
  snapshotManifest(collectionId: number, snapshotId: number, segmentId: number): string {
    return `${SNAPSHOTS_PREFIX}${id('collectionId', collectionId)}/manifests/${id('snapshotId', snapshotId)}/${id('segmentId', segmentId)}.avro`
  },
})

/** The type of {@link layout} (`catalog.layout`). */
export type Layout = typeof layout

/**
 * The snapshot an object under `snapshots/` belongs to, from its key: the ID in
 * `snapshots/{c}/metadata/{id}.json`, `snapshots/{c}/lists/{id}.txt` and
 * `snapshots/{c}/manifests/{id}/{segmentId}.avro`; undefined for any other key.
 */
export function snapshotObjectOwner(key: string): { collectionId: number; snapshotId: number } | undefined {
  const m = /^snapshots\/(\d+)\/(?:metadata\/(\d+)\.json|lists\/(\d+)\.txt|manifests\/(\d+)\/\d+\.avro)$/.exec(key)
  if (m === null) return undefined
  return { collectionId: Number(m[1]), snapshotId: Number(m[2] ?? m[3] ?? m[4]) }
}

/** The last '/'-separated segment of a key. */
export function baseName(key: string): string {
  const i = key.lastIndexOf('/')
  return i === -1 ? key : key.slice(i + 1)
}
