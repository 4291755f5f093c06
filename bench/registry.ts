import type { Bench } from './types.js'
import { createSnapshotBench } from './benches/create-snapshot.js'
import { durabilityBench } from './benches/durability.js'
import { exportBench } from './benches/export.js'
import { exportRssBench } from './benches/export-rss.js'
import { gcPassBench } from './benches/gc-pass.js'
import { restoreFsBench } from './benches/restore-fs.js'
import { restoreRssBench } from './benches/restore-rss.js'
import { restoreS3Bench } from './benches/restore-s3.js'
import { restoreVsRebuildBench } from './benches/restore-vs-rebuild.js'
import { retentionBench } from './benches/retention.js'
import { scaleBench } from './benches/scale.js'

/**
 * Every benchmark `npm run bench` knows, in run order. To add one, write
 * `bench/benches/<name>.ts` exporting a {@link Bench} and append it here.
 */
export const benches: readonly Bench[] = [createSnapshotBench, restoreFsBench, restoreS3Bench, restoreRssBench, restoreVsRebuildBench, gcPassBench, scaleBench, retentionBench, durabilityBench, exportBench, exportRssBench]
