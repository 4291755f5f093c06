/**
 * The README's retention and space examples, reproducible: `npx tsx examples/retention.ts`.
 *
 * A collection `docs` gets a new 1 MiB segment every hour and an hourly snapshot for a week
 * (Sunday 2026-11-29 00:00 UTC to Saturday 2026-12-05 23:00 UTC, 168 snapshots, on a fake
 * clock), in memory. It prints what `vecsnap prune docs --keep-hourly 24 --keep-daily 7
 * --dry-run` prints for that history, prunes it, and prints what `vecsnap du docs` then
 * prints. test/docs/retention-example.test.ts checks the README's tables against this.
 */
import { fileURLToPath } from 'node:url'
import { MemoryMetaStore, SnapshotManager } from '../src/index.js'
import type { FieldBinlog, PruneReport, SpaceReport } from '../src/index.js'
import { MemoryObjects } from '../test/helpers/memory-objects.js'

const HOUR = 3_600_000
/** Sunday 2026-11-29 00:00 UTC. */
export const WEEK_START = Date.UTC(2026, 10, 29)
const SEGMENT_BYTES = 1 << 20

/** What the example produces. */
export interface RetentionExample {
  dryRun: PruneReport
  pruned: PruneReport
  space: SpaceReport
}

/** Builds the week, prunes it to 24 hourly + 7 daily, and reports the space after. */
export async function runRetentionExample(): Promise<RetentionExample> {
  let now = WEEK_START
  const objects = new MemoryObjects()
  const manager = new SnapshotManager({ meta: new MemoryMetaStore(), objects, gcIntervalMs: 0, now: () => now })
  await manager.open()
  try {
    const { catalog } = manager
    const docs = await catalog.createCollection({
      name: 'docs',
      schema: { fields: [{ name: 'id', dataType: 'Int64', isPrimaryKey: true }, { name: 'vector', dataType: 'FloatVector', dim: 4 }] },
    })
    for (let hour = 0; hour < 7 * 24; hour++) {
      now = WEEK_START + hour * HOUR
      const segment = await catalog.allocSegment({ collection: 'docs' })
      const binlogs: FieldBinlog[] = []
      for (const field of docs.schema.fields) {
        const key = catalog.layout.insertLog({ collectionId: docs.id, partitionId: segment.partitionId, segmentId: segment.id, fieldId: field.fieldId, logId: 1 })
        const { size } = await objects.put(key, new Uint8Array(SEGMENT_BYTES / 2))
        binlogs.push({ fieldId: field.fieldId, files: [{ key, size, logId: 1 }] })
      }
      await catalog.flushSegment(segment.id, { numRows: 1_000, binlogs })
      // Compaction keeps the collection at 4 segments: the oldest goes as each new one lands.
      const live = await catalog.listSegments('docs', { states: ['flushed'] })
      if (live.length > 4) await catalog.dropSegment(live[0].id)
      const stamp = new Date(now).toISOString().replace(/[-:]/g, '').slice(0, 15).replace('T', '-')
      await manager.createSnapshot({ collectionName: 'docs', snapshotName: `docs-${stamp}` })
    }
    now += 30 * 60_000
    const policy = { keepHourly: 24, keepDaily: 7 }
    const dryRun = await manager.pruneSnapshots({ collectionName: 'docs', policy, dryRun: true })
    const pruned = await manager.pruneSnapshots({ collectionName: 'docs', policy })
    const space = await manager.spaceReport({ collectionName: 'docs' })
    return { dryRun, pruned, space }
  } finally {
    await manager.close()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { renderPrune, renderSpace } = await import('../src/cli/render.js')
  const { dryRun, space } = await runRetentionExample()
  console.log('$ vecsnap prune docs --keep-hourly 24 --keep-daily 7 --dry-run')
  console.log(renderPrune(dryRun))
  console.log('\n$ vecsnap prune docs --keep-hourly 24 --keep-daily 7 && vecsnap du docs')
  console.log(renderSpace(space))
}
