import type { SegmentFile, SegmentFileLists } from '../catalog-types.js'

/** The class of a segment file, as snapshots, restore and GC see it. */
export type FileClass = 'binlog' | 'statslog' | 'deltalog' | 'bm25log' | 'index' | 'textIndex' | 'jsonKeyIndex'

/** One file of a segment with where it belongs. */
export interface ClassifiedFile {
  cls: FileClass
  /** Field of a log or text/JSON index; undefined for vector/scalar index files. */
  fieldId?: number
  /** Index ID of an index file. */
  indexId?: number
  /** Build ID of an index, text or JSON-key index file. */
  buildId?: number
  file: SegmentFile
}

/** Every file of a segment, each once, in a stable order. */
export function* segmentFiles(s: SegmentFileLists): Generator<ClassifiedFile> {
  for (const [cls, lists] of [['binlog', s.binlogs], ['statslog', s.statslogs], ['deltalog', s.deltalogs], ['bm25log', s.bm25logs]] as const) {
    for (const fb of lists ?? []) for (const file of fb.files) yield { cls, fieldId: fb.fieldId, file }
  }
  for (const ix of s.indexes ?? []) for (const file of ix.files) yield { cls: 'index', indexId: ix.indexId, buildId: ix.buildId, file }
  for (const t of s.textIndexes ?? []) for (const file of t.files) yield { cls: 'textIndex', fieldId: t.fieldId, buildId: t.buildId, file }
  for (const j of s.jsonKeyIndexes ?? []) for (const file of j.files) yield { cls: 'jsonKeyIndex', fieldId: j.fieldId, buildId: j.buildId, file }
}

/** Summed size of every file of a segment, index files included. */
export function segmentBytes(s: SegmentFileLists): number {
  let total = 0
  for (const f of segmentFiles(s)) total += f.file.size
  return total
}
