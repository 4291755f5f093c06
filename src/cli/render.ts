import type {
  CollectionInfo,
  GcReport,
  ObjectExplanation,
  PruneReport,
  RestoreJobInfo,
  RetentionPolicy,
  ScheduleInfo,
  ScheduleRunResult,
  SnapshotDescription,
  SnapshotInfo,
  SpaceReport,
  VerifyReport,
} from '../index.js'
import { formatSpan } from '../policy/retention.js'
import { fields, formatBytes, formatMs, formatTime, table } from './format.js'

/**
 * Text renderings of each command's result (what `--json` prints as JSON instead).
 */

/** A collection with the totals of its flushed segments, as `vecsnap collections` lists it. */
export interface CollectionSummary extends CollectionInfo {
  /** Flushed segments. */
  segmentCount: number
  /** Rows of the flushed segments (deletes not subtracted). */
  rowCount: number
}

export function renderCollections(list: readonly CollectionSummary[]): string {
  return table(
    ['name', 'id', 'fields', 'shards', 'partitions', 'segments', 'rows', 'created'],
    list.map((c) => [
      c.name,
      String(c.id),
      c.schema.fields.map((f) => `${f.name}:${f.dataType}${f.dim === undefined ? '' : `(${f.dim})`}`).join(' '),
      String(c.shardsNum),
      c.partitions.map((p) => p.name).join(','),
      String(c.segmentCount),
      String(c.rowCount),
      formatTime(c.createdAt),
    ]),
  )
}

export function renderSnapshots(list: readonly SnapshotInfo[]): string {
  return table(
    ['name', 'collection', 'created', 'segments', 'rows', 'size', 'holds', 'description'],
    list.map((s) => [s.name, s.collectionName, formatTime(s.createdAt), String(s.segmentCount), String(s.rowCount), formatBytes(s.sizeBytes), holdsText(s), s.description]),
  )
}

/** A snapshot's holds in one cell: tags, with the expiry of those that expire. */
function holdsText(s: SnapshotInfo): string {
  if (s.holds.length === 0) return '-'
  return s.holds.map((h) => (h.expiresAt === undefined ? h.tag : `${h.tag} (until ${formatTime(h.expiresAt)})`)).join(', ')
}

function snapshotFields(s: SnapshotInfo): [string, string][] {
  return [
    ['snapshot', s.name],
    ['id', String(s.id)],
    ['collection', `${s.collectionName} (id ${s.collectionId})`],
    ['created', formatTime(s.createdAt)],
    ['state', s.state],
    ['segments', String(s.segmentCount)],
    ['rows', String(s.rowCount)],
    ['size', formatBytes(s.sizeBytes)],
    ['holds', holdsText(s)],
    ['description', s.description || '-'],
  ]
}

export function renderCreated(s: SnapshotInfo, elapsedMs: number): string {
  return `created snapshot ${s.name} of ${s.collectionName} in ${formatMs(elapsedMs)}: ${s.segmentCount} segments, ${s.rowCount} rows, ${formatBytes(s.sizeBytes)} (no data copied)`
}

export function renderDescription(d: SnapshotDescription): string {
  const out = [fields(snapshotFields(d))]
  if (d.collection !== undefined) {
    out.push('', 'schema:')
    out.push(
      table(
        ['field', 'id', 'type', 'dim', 'primary key'],
        d.collection.schema.fields.map((f) => [f.name, String(f.fieldId), f.dataType, f.dim === undefined ? '-' : String(f.dim), f.isPrimaryKey === true ? 'yes' : ''])
      ),
    )
    out.push('', `shards: ${d.collection.shardsNum}   partitions: ${d.collection.partitions.map((p) => p.name).join(', ')}`)
    const props = Object.entries(d.collection.properties)
    if (props.length > 0) out.push(`properties: ${props.map(([k, v]) => `${k}=${v}`).join(', ')}`)
  }
  if (d.indexes !== undefined) {
    out.push('', 'indexes:')
    out.push(table(['name', 'id', 'field id', 'params'], d.indexes.map((i) => [i.name, String(i.id), String(i.fieldId), Object.entries(i.params).map(([k, v]) => `${k}=${v}`).join(' ')])))
  }
  return out.join('\n')
}

export function renderJobs(list: readonly RestoreJobInfo[]): string {
  return table(
    ['job', 'snapshot', 'target', 'state', 'progress', 'segments', 'copied', 'time', 'created'],
    list.map((j) => [
      String(j.jobId),
      j.snapshotName,
      j.targetCollectionName,
      j.state,
      `${j.progress}%`,
      `${j.copiedSegments}/${j.totalSegments}`,
      `${formatBytes(j.copiedBytes)} / ${formatBytes(j.totalBytes)}`,
      formatMs(j.timeCostMs),
      formatTime(j.createdAt),
    ]),
  )
}

export function renderJob(j: RestoreJobInfo): string {
  return fields([
    ['job', String(j.jobId)],
    ['snapshot', j.snapshotName],
    ['target', `${j.targetCollectionName} (id ${j.collectionId})`],
    ['state', j.state],
    ['progress', `${j.progress}%`],
    ['segments', `${j.copiedSegments}/${j.totalSegments}`],
    ['bytes', `${formatBytes(j.copiedBytes)} / ${formatBytes(j.totalBytes)}`],
    ['time', formatMs(j.timeCostMs)],
    ['created', formatTime(j.createdAt)],
    ['finished', formatTime(j.finishedAt)],
    ['reason', j.reason || '-'],
  ])
}

export function renderGc(r: GcReport): string {
  const verb = r.dryRun ? 'would delete' : 'deleted'
  return [
    `${r.dryRun ? 'dry run: ' : ''}${verb} ${r.deletedObjects} objects (${formatBytes(r.deletedBytes)}), ${r.orphansDeleted} of them orphans`,
    `kept ${r.keptForSnapshots} for snapshots or running restores, ${r.keptForGrace} within their grace period`,
  ].join('\n')
}

export function renderVerify(name: string, r: VerifyReport): string {
  if (r.ok) return `snapshot ${name} is ok: ${r.checkedFiles} files checked`
  const lines = [`snapshot ${name} is NOT ok: ${r.checkedFiles} files checked, ${r.missing.length} missing, ${r.corrupt.length} corrupt`]
  for (const k of r.missing) lines.push(`  missing  ${k}`)
  for (const k of r.corrupt) lines.push(`  corrupt  ${k}`)
  return lines.join('\n')
}

/** `vecsnap du`: collections, then snapshots, with human sizes (ZFS column names). */
export function renderSpace(r: SpaceReport): string {
  const collections = table(
    ['collection', 'live', 'snapshot-only'],
    r.collections.map((c) => [c.name, formatBytes(c.liveBytes), formatBytes(c.snapshotOnlyBytes)]),
  )
  const snapshots = table(
    ['snapshot', 'collection', 'referenced', 'exclusive', 'written'],
    r.snapshots.map((s) => [s.name, s.collectionName, formatBytes(s.referencedBytes), formatBytes(s.exclusiveBytes), formatBytes(s.writtenBytes)]),
  )
  return `${collections}\n\n${snapshots}\n\ntotal ${formatBytes(r.totalBytes)} (segment and index files, each once)`
}

/** `vecsnap explain`: the verdict, then one line per reason. */
export function renderExplanation(e: ObjectExplanation): string {
  const reasons = e.reasons.map((r) => {
    const who = r.name !== undefined ? `${r.name} (id ${r.id})` : r.id !== undefined ? `id ${r.id}` : ''
    const until = r.until !== undefined ? `until ${formatTime(r.until)}` : ''
    return `  ${r.kind}${who === '' ? '' : ` ${who}`}${until === '' ? '' : ` ${until}`}`
  })
  const size = e.exists ? formatBytes(e.sizeBytes ?? 0) : 'absent'
  return [`${e.key}: ${e.verdict} (${size})`, ...reasons].join('\n')
}

/** How {@link renderPrune} labels a report: `vecsnap prune` and `vecsnap repo prune` differ in these only. */
export interface PruneLabels {
  /** Header of the name column. */
  nameColumn: string
  /** Put before the first line. */
  intro: string
  /** What the freed bytes are, after the figure. */
  freedNote: string
}

const SNAPSHOT_PRUNE: PruneLabels = { nameColumn: 'snapshot', intro: '', freedNote: 'segment and index files GC may now delete' }

/** `vecsnap prune` (and `repo prune`): what is kept and why, what goes and what it frees (restic's `forget` layout). */
export function renderPrune(r: PruneReport, labels: PruneLabels = SNAPSHOT_PRUNE): string {
  const kept = table(
    [labels.nameColumn, 'collection', 'kept because'],
    r.kept.map((k) => [k.name, k.collectionName, k.reasons.join(', ')]),
  )
  const dropped = table(
    [labels.nameColumn, 'collection', 'frees alone'],
    r.dropped.map((d) => [d.name, d.collectionName, formatBytes(d.reclaimableBytes)]),
  )
  const verb = r.dryRun ? 'would drop' : 'dropped'
  const out = [`${labels.intro}keep ${r.kept.length} snapshots:`, kept, '', `${verb} ${r.dropped.length} snapshots:`, dropped]
  if (r.failed.length > 0) {
    out.push('', `${r.failed.length} drops failed (those snapshots are still there):`)
    for (const f of r.failed) out.push(`  ${f.name}  ${f.code}: ${f.message}`)
  }
  out.push('', `${r.dryRun ? 'dry run: would free' : 'freed'} ${formatBytes(r.reclaimedBytes)} (${labels.freedNote})`)
  return out.join('\n')
}

const POLICY_FLAGS: [keyof RetentionPolicy, string][] = [
  ['keepLast', 'last'],
  ['keepHourly', 'hourly'],
  ['keepDaily', 'daily'],
  ['keepWeekly', 'weekly'],
  ['keepMonthly', 'monthly'],
  ['keepYearly', 'yearly'],
  ['minCount', 'min'],
  ['maxCount', 'max'],
]

/** A retention policy in one cell: `last 3, daily 7, within 2d`. */
function policyText(p: RetentionPolicy | undefined): string {
  if (p === undefined) return '-'
  const parts = POLICY_FLAGS.filter(([k]) => p[k] !== undefined).map(([k, word]) => `${word} ${p[k]}`)
  if (p.keepWithinMs !== undefined) parts.push(`within ${formatSpan(p.keepWithinMs)}`)
  if (p.timeZone !== undefined) parts.push(p.timeZone)
  return parts.join(', ')
}

/** `vecsnap schedules`. */
export function renderSchedules(list: readonly ScheduleInfo[]): string {
  return table(
    ['schedule', 'collection', 'when', 'retention', 'last run', 'last snapshot', 'next run', 'last error'],
    list.map((s) => [
      s.name,
      s.collectionName,
      s.everyMs !== undefined ? `every ${formatSpan(s.everyMs)}` : `cron ${s.cron}${s.timeZone === undefined ? '' : ` (${s.timeZone})`}`,
      policyText(s.retention),
      formatTime(s.lastRunAt),
      s.lastSnapshot ?? '-',
      formatTime(s.nextRunAt),
      s.lastError === undefined ? '-' : `${s.lastError.code}: ${s.lastError.message}`,
    ]),
  )
}

/** `vecsnap schedules run`. */
export function renderScheduleRuns(runs: readonly ScheduleRunResult[]): string {
  if (runs.length === 0) return 'no schedule is due'
  return runs
    .map((r) => {
      if (!r.created) {
        return `${r.schedule}: ${r.snapshotName} failed: ${r.error?.code}: ${r.error?.message}`
      }
      const pruned = r.pruned.length === 0 ? '' : `, pruned ${r.pruned.join(', ')}`
      return `${r.schedule}: created ${r.snapshotName}${pruned}${r.error === undefined ? '' : ` (retention failed: ${r.error.code}: ${r.error.message})`}`
    })
    .join('\n')
}
