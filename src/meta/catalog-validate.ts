import { SnapshotError } from '../errors.js'
import { SNAPSHOTS_PREFIX, baseName } from '../storage/layout.js'
import type {
  CollectionSchema,
  FieldBinlog,
  SegmentFile,
  SegmentLevel,
  SegmentState,
  StoredFieldSchema,
} from '../catalog-types.js'

/**
 * Input checks of the Catalog. Programmer misuse (a wrong type) throws a `TypeError`
 * worded like p-queue's; a well-typed but bad value throws `INVALID_ARGUMENT`. Every
 * check runs before a transaction writes anything, and every validator returns a clean
 * copy holding only the known properties, so nothing else reaches the MetaStore.
 * @internal
 */

/** Most shards a collection may have. */
export const MAX_SHARDS = 64
/** ID of the first field of a schema; the others follow in declaration order. */
export const FIRST_FIELD_ID = 100
/** Milvus's system fields (RowID 0, Timestamp 1), which binlogs may carry besides the schema's. */
export const SYSTEM_FIELD_IDS: readonly number[] = Object.freeze([0, 1])
/** The partition every collection has, and the default of `allocSegment`. */
export const DEFAULT_PARTITION = '_default'

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/
const DENSE_VECTOR_TYPES = new Set(['FloatVector', 'BinaryVector', 'Float16Vector', 'BFloat16Vector', 'Int8Vector'])
const PRIMARY_KEY_TYPES = new Set(['Int64', 'VarChar'])
const LEVELS: readonly SegmentLevel[] = ['L0', 'L1', 'L2']
const STATES: readonly SegmentState[] = ['growing', 'flushed', 'dropped']

/** What kind of thing a name names, for messages. */
export type NameKind = 'collection' | 'partition' | 'field' | 'index'

/** `typeof`, with `null` and arrays told apart, for TypeError messages. */
export function typeName(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
  return String(value)
}

/** An `INVALID_ARGUMENT` error. */
export function invalid(message: string): SnapshotError {
  return new SnapshotError('INVALID_ARGUMENT', message)
}

/** Throws a `TypeError` unless `value` is a plain object (not null, not an array). */
export function expectObject(value: unknown, name: string): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`Expected \`${name}\` to be an object, got \`${typeName(value)}\``)
  }
}

/** Throws a `TypeError` unless `value` is absent or a plain object. */
export function expectOptions(value: unknown, name = 'options'): asserts value is Record<string, unknown> | undefined {
  if (value === undefined) return
  expectObject(value, name)
  const signal = value.signal
  if (signal !== undefined && (typeof signal !== 'object' || signal === null || typeof (signal as AbortSignal).aborted !== 'boolean')) {
    throw new TypeError(`Expected \`${name}.signal\` to be an AbortSignal, got \`${typeName(signal)}\``)
  }
}

/** Throws a `TypeError` unless `value` is a string. */
export function expectString(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`Expected \`${name}\` to be a string, got \`${typeName(value)}\``)
}

/** Throws a `TypeError` unless `value` is an array. */
export function expectArray(value: unknown, name: string): asserts value is unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`Expected \`${name}\` to be an array, got \`${typeName(value)}\``)
}

function expectOptionalBoolean(value: unknown, name: string): asserts value is boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`Expected \`${name}\` to be a boolean, got \`${typeName(value)}\``)
  }
}

/** A non-negative safe integer: `TypeError` for a non-number, `INVALID_ARGUMENT` otherwise. */
export function validateCount(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`Expected \`${name}\` to be a number, got \`${typeName(value)}\``)
  if (!Number.isSafeInteger(value) || value < 0) throw invalid(`\`${name}\` must be a non-negative safe integer, got ${shown(value)}`)
  return value
}

/** A positive safe integer (an ID): `TypeError` for a non-number, `INVALID_ARGUMENT` otherwise. */
export function validateId(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`Expected \`${name}\` to be a number, got \`${typeName(value)}\``)
  if (!Number.isSafeInteger(value) || value < 1) throw invalid(`\`${name}\` must be a positive safe integer, got ${shown(value)}`)
  return value
}

/**
 * A collection, partition, field or index name: 1–255 letters, digits and `_`, starting
 * with a letter or `_` (Milvus's rule).
 */
export function validateName(value: unknown, kind: NameKind, name = kind === 'collection' ? 'name' : `${kind}Name`): string {
  expectString(value, name)
  if (!NAME_RE.test(value)) {
    throw invalid(`invalid ${kind} name ${shown(value)}: use 1–255 letters, digits and '_', starting with a letter or '_'`)
  }
  return value
}

/** A `Record<string, string>` (properties, params), copied; `undefined` gives `{}`. */
export function validateStringRecord(value: unknown, name: string): Record<string, string> {
  if (value === undefined) return {}
  expectObject(value, name)
  const entries = Object.entries(value)
  for (const [k, v] of entries) {
    expectString(v, `${name}.${k}`)
    if (k === '') throw invalid(`\`${name}\` has an empty key`)
  }
  // fromEntries defines own properties, so even a `__proto__` key is kept as data.
  return Object.fromEntries(entries) as Record<string, string>
}

/** `shardsNum`: an integer from 1 to {@link MAX_SHARDS}; default 1. */
export function validateShardsNum(value: unknown): number {
  if (value === undefined) return 1
  if (typeof value !== 'number') throw new TypeError(`Expected \`shardsNum\` to be a number, got \`${typeName(value)}\``)
  if (!Number.isInteger(value) || value < 1 || value > MAX_SHARDS) throw invalid(`\`shardsNum\` must be an integer from 1 to ${MAX_SHARDS}, got ${shown(value)}`)
  return value
}

/** Partition names, unique, with `_default` first unless listed. Default `['_default']`. */
export function validatePartitionNames(value: unknown): string[] {
  if (value === undefined) return [DEFAULT_PARTITION]
  expectArray(value, 'partitionNames')
  const names = value.map((n, i) => validateName(n, 'partition', `partitionNames[${i}]`))
  const seen = new Set<string>()
  for (const n of names) {
    if (seen.has(n)) throw invalid(`duplicate partition name ${shown(n)}`)
    seen.add(n)
  }
  return seen.has(DEFAULT_PARTITION) ? names : [DEFAULT_PARTITION, ...names]
}

function validateField(f: unknown, i: number): StoredFieldSchema {
  const path = `schema.fields[${i}]`
  expectObject(f, path)
  const name = validateName(f.name, 'field', `${path}.name`)
  expectString(f.dataType, `${path}.dataType`)
  const dataType = f.dataType
  if (dataType === '') throw invalid(`field ${shown(name)} has an empty \`dataType\``)
  expectOptionalBoolean(f.isPrimaryKey, `${path}.isPrimaryKey`)
  expectOptionalBoolean(f.autoId, `${path}.autoId`)
  const out: StoredFieldSchema = { fieldId: FIRST_FIELD_ID + i, name, dataType }
  if (f.isPrimaryKey !== undefined) out.isPrimaryKey = f.isPrimaryKey
  if (f.autoId !== undefined) out.autoId = f.autoId
  if (f.dim !== undefined) {
    out.dim = validateCount(f.dim, `${path}.dim`)
    if (out.dim < 1) throw invalid(`field ${shown(name)} needs \`dim\` ≥ 1, got 0`)
  }
  if (f.maxLength !== undefined) {
    out.maxLength = validateCount(f.maxLength, `${path}.maxLength`)
    if (out.maxLength < 1) throw invalid(`field ${shown(name)} needs \`maxLength\` ≥ 1, got 0`)
  }
  if (f.params !== undefined) out.params = validateStringRecord(f.params, `${path}.params`)
  if (DENSE_VECTOR_TYPES.has(dataType)) {
    if (out.dim === undefined) throw invalid(`vector field ${shown(name)} (${dataType}) needs \`dim\` ≥ 1`)
    if (dataType === 'BinaryVector' && out.dim % 8 !== 0) throw invalid(`binary vector field ${shown(name)} needs \`dim\` a multiple of 8, got ${out.dim}`)
  }
  if (dataType === 'VarChar' && out.maxLength === undefined) throw invalid(`VarChar field ${shown(name)} needs \`maxLength\` ≥ 1`)
  if (out.isPrimaryKey === true && !PRIMARY_KEY_TYPES.has(dataType)) {
    throw invalid(`primary key field ${shown(name)} must be Int64 or VarChar, got ${dataType}`)
  }
  if (out.autoId === true && out.isPrimaryKey !== true) throw invalid(`\`autoId\` is only allowed on the primary key, not on field ${shown(name)}`)
  return out
}

/**
 * The schema of `createCollection`: at least one field, unique names, exactly one
 * primary key (Int64 or VarChar), dense vectors with `dim`, VarChar with `maxLength`.
 * Field IDs are assigned from {@link FIRST_FIELD_ID} in declaration order.
 */
export function validateSchema(value: unknown): CollectionSchema {
  expectObject(value, 'schema')
  expectArray(value.fields, 'schema.fields')
  if (value.description !== undefined) expectString(value.description, 'schema.description')
  if (value.fields.length === 0) throw invalid('`schema.fields` must list at least one field')
  const fields = value.fields.map(validateField)
  const seen = new Set<string>()
  for (const f of fields) {
    if (seen.has(f.name)) throw invalid(`duplicate field name ${shown(f.name)}`)
    seen.add(f.name)
  }
  const keys = fields.filter((f) => f.isPrimaryKey === true)
  if (keys.length !== 1) throw invalid(`the schema needs exactly one primary key field, got ${keys.length}`)
  const schema: CollectionSchema = { fields }
  if (value.description !== undefined) schema.description = value.description
  return schema
}

/** A segment level: `L0`, `L1` or `L2`; default `L1`. */
export function validateLevel(value: unknown, name = 'level'): SegmentLevel {
  if (value === undefined) return 'L1'
  expectString(value, name)
  if (!LEVELS.includes(value as SegmentLevel)) throw invalid(`\`${name}\` must be one of ${LEVELS.join(', ')}, got ${shown(value)}`)
  return value as SegmentLevel
}

/** The `states` filter of `listSegments`; `undefined` means every state. */
export function validateStates(value: unknown): SegmentState[] | undefined {
  if (value === undefined) return undefined
  expectArray(value, 'states')
  return value.map((s, i) => {
    expectString(s, `states[${i}]`)
    if (!STATES.includes(s as SegmentState)) throw invalid(`\`states[${i}]\` must be one of ${STATES.join(', ')}, got ${shown(s)}`)
    return s as SegmentState
  })
}

/**
 * An object key as the ObjectStore port accepts it (non-empty, relative, '/'-separated,
 * no empty, `.` or `..` segment, no backslash or NUL), and not under `snapshots/`, which
 * vecsnap owns.
 */
export function validateObjectKey(value: unknown, name: string): string {
  expectString(value, name)
  const bad =
    value === '' ||
    /[\\\0]/.test(value) ||
    value.split('/').some((s) => s === '' || s === '.' || s === '..')
  if (bad) throw invalid(`\`${name}\` is not a valid object key: ${shown(value)} (use a relative, '/'-separated key without empty, '.' or '..' segments)`)
  if (value.startsWith(SNAPSHOTS_PREFIX)) throw invalid(`\`${name}\` is under ${SNAPSHOTS_PREFIX}, which vecsnap owns: ${shown(value)}`)
  return value
}

/** One {@link SegmentFile}, copied with only its known properties. */
export function validateFile(value: unknown, name: string): SegmentFile {
  expectObject(value, name)
  const out: SegmentFile = { key: validateObjectKey(value.key, `${name}.key`), size: validateCount(value.size, `${name}.size`) }
  if (value.logId !== undefined) out.logId = validateCount(value.logId, `${name}.logId`)
  if (value.entries !== undefined) out.entries = validateCount(value.entries, `${name}.entries`)
  if (value.checksum !== undefined) {
    expectString(value.checksum, `${name}.checksum`)
    if (value.checksum === '') throw invalid(`\`${name}.checksum\` is empty`)
    out.checksum = value.checksum
  }
  return out
}

/**
 * The files of one index build: at least one, with distinct base names (restore names
 * the copies by base name).
 */
export function validateBuildFiles(value: unknown, name: string): SegmentFile[] {
  expectArray(value, name)
  if (value.length === 0) throw invalid(`\`${name}\` must list at least one file`)
  const files = value.map((f, i) => validateFile(f, `${name}[${i}]`))
  const seen = new Set<string>()
  for (const f of files) {
    const base = baseName(f.key)
    if (seen.has(base)) throw invalid(`\`${name}\` has two files named ${shown(base)}; the files of one build need distinct base names`)
    seen.add(base)
  }
  return files
}

/**
 * A `FieldBinlog[]` (binlogs, statslogs, deltalogs, bm25 logs): one entry per field,
 * distinct `logId`s within a field. Field IDs are checked against the schema later,
 * with {@link checkFieldIds}. `undefined` gives `[]`.
 */
export function validateFieldBinlogs(value: unknown, name: string): FieldBinlog[] {
  if (value === undefined) return []
  expectArray(value, name)
  const fields = new Set<number>()
  return value.map((fb, i) => {
    const path = `${name}[${i}]`
    expectObject(fb, path)
    const fieldId = validateCount(fb.fieldId, `${path}.fieldId`)
    if (fields.has(fieldId)) throw invalid(`\`${name}\` lists field ${fieldId} twice`)
    fields.add(fieldId)
    expectArray(fb.files, `${path}.files`)
    const files = fb.files.map((f, j) => validateFile(f, `${path}.files[${j}]`))
    const logIds = new Set<number>()
    for (const f of files) {
      if (f.logId === undefined) continue
      if (logIds.has(f.logId)) throw invalid(`\`${path}.files\` has logId ${f.logId} twice`)
      logIds.add(f.logId)
    }
    return { fieldId, files }
  })
}

/** Throws `INVALID_ARGUMENT` unless every list's field ID is allowed. */
export function checkFieldIds(lists: readonly FieldBinlog[], name: string, allowed: ReadonlySet<number>): void {
  for (const fb of lists) {
    if (!allowed.has(fb.fieldId)) throw invalid(`\`${name}\` names field ${fb.fieldId}, which is not a field of the collection`)
  }
}

/** Every file of some `FieldBinlog` lists. */
export function* filesOf(lists: readonly (readonly { files: readonly SegmentFile[] }[])[]): Generator<SegmentFile> {
  for (const list of lists) for (const entry of list) yield* entry.files
}

/**
 * Throws `INVALID_ARGUMENT` if a key of `added` repeats, or is already in `existing`:
 * files are immutable, so a segment never lists one key twice (and a new build never
 * reuses an old build's key, which GC will delete).
 */
export function checkDistinctKeys(added: Iterable<SegmentFile>, existing: Iterable<SegmentFile> = [], what = 'the segment'): void {
  const seen = new Set<string>()
  for (const f of existing) seen.add(f.key)
  for (const f of added) {
    if (seen.has(f.key)) throw invalid(`${what} already lists the file ${shown(f.key)}; files are immutable, write new data under a new key`)
    seen.add(f.key)
  }
}

/** Row count and file lists of a flush or a compaction result; missing lists are empty. */
export interface SegmentData {
  numRows: number
  binlogs: FieldBinlog[]
  statslogs: FieldBinlog[]
  deltalogs: FieldBinlog[]
  bm25logs: FieldBinlog[]
}

/** The request of `flushSegment`, or the `result` of `compact`. */
export function validateSegmentData(request: unknown, name: string): SegmentData {
  expectObject(request, name)
  return {
    numRows: validateCount(request.numRows, `${name}.numRows`),
    binlogs: validateFieldBinlogs(request.binlogs, `${name}.binlogs`),
    statslogs: validateFieldBinlogs(request.statslogs, `${name}.statslogs`),
    deltalogs: validateFieldBinlogs(request.deltalogs, `${name}.deltalogs`),
    bm25logs: validateFieldBinlogs(request.bm25logs, `${name}.bm25logs`),
  }
}
