import type { ExportReport, PruneReport, RepositorySnapshotInfo, SnapshotInfo, VerifyReport } from '../index.js'
import { formatBytes, formatMs, formatTime, table } from './format.js'
import { renderPrune } from './render.js'

/** Text renderings of the repository commands (`export`, `import`, `repo …`). */

/** `vecsnap export`. */
export function renderExport(r: ExportReport, repository: string): string {
  return [
    `exported snapshot ${r.snapshotName} to ${repository} as ${r.repositorySnapshotId} in ${formatMs(r.timeCostMs)}`,
    `copied ${r.copiedFiles} files (${formatBytes(r.copiedBytes)}), ${r.skippedFiles} already there (${formatBytes(r.skippedBytes)})`,
  ].join('\n')
}

/** `vecsnap import`. */
export function renderImport(s: SnapshotInfo, repositorySnapshotId: string, repository: string): string {
  return [
    `imported ${repositorySnapshotId} from ${repository} as snapshot ${s.name} of ${s.collectionName}: ${s.segmentCount} segments, ${s.rowCount} rows, ${formatBytes(s.sizeBytes)}`,
    `restore it with: vecsnap restore ${s.name} <new collection>`,
  ].join('\n')
}

/** `vecsnap repo list`. */
export function renderRepositorySnapshots(list: readonly RepositorySnapshotInfo[]): string {
  return table(
    ['id', 'snapshot', 'collection', 'created', 'exported', 'segments', 'rows', 'size'],
    list.map((s) => [s.repositorySnapshotId, s.snapshotName, s.collectionName, formatTime(s.createdAt), formatTime(s.exportedAt), String(s.segmentCount), String(s.rowCount), formatBytes(s.sizeBytes)]),
  )
}

/** `vecsnap repo verify`. */
export function renderRepositoryVerify(repository: string, r: VerifyReport): string {
  if (r.ok) return `repository ${repository} is ok: ${r.checkedFiles} files checked`
  const lines = [`repository ${repository} is NOT ok: ${r.checkedFiles} files checked, ${r.missing.length} missing, ${r.corrupt.length} corrupt`]
  for (const k of r.missing) lines.push(`  missing  ${k}`)
  for (const k of r.corrupt) lines.push(`  corrupt  ${k}`)
  return lines.join('\n')
}

/** `vecsnap repo prune`: the entries kept and why, those dropped and what each frees alone. */
export function renderRepositoryPrune(repository: string, r: PruneReport): string {
  return renderPrune(r, { nameColumn: 'id', intro: `repository ${repository}: `, freedNote: 'files no remaining snapshot references' })
}
