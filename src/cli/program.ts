import { Command, CommanderError, Option } from 'commander'
import { SnapshotError } from '../index.js'
import type { SnapshotManager, SnapshotManagerOptions } from '../index.js'
import { openManager, type GlobalOptions } from './context.js'
import {
  renderCollections,
  renderCreated,
  renderDescription,
  renderGc,
  renderSpace,
  renderPrune,
  renderScheduleRuns,
  renderSchedules,
  renderExplanation,
  renderJob,
  renderJobs,
  renderSnapshots,
  renderVerify,
  type CollectionSummary,
} from './render.js'
import { addRepositoryCommands } from './repository-commands.js'
import { CliExit, EXIT_INTERRUPTED, waitWithProgress } from './restore-wait.js'
import { addRetentionOptions, parseDuration, retentionPolicy } from './retention-options.js'

/**
 * Exit codes of `vecsnap`:
 * 0 success; 1 any other failure (bad usage, unexpected error); 2 a vecsnap
 * `SnapshotError` (stderr says `error <CODE>: message`); 3 `verify` found missing or
 * corrupt files; 130 interrupted by Ctrl-C.
 */
export const EXIT_CODES = Object.freeze({ ok: 0, failure: 1, snapshotError: 2, verifyFailed: 3, interrupted: EXIT_INTERRUPTED })

/** Where a command's output goes (stdout and stderr of the process by default). */
export interface CliIo {
  out(text: string): void
  err(text: string): void
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
}

function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < 0) throw new SnapshotError('INVALID_ARGUMENT', `${name} must be a non-negative integer, got ${value}`)
    return n
  }
}

/** What a command hands back: the value printed by `--json`, and its text rendering. */
interface Outcome {
  value: unknown
  text: string
  exitCode?: number
}

type Action = (manager: SnapshotManager, globals: GlobalOptions) => Promise<Outcome>

/** Builds the commander program; `run` parses and executes it. */
export function createProgram(io: CliIo = processIo, onExit: (code: number) => void = () => undefined): Command {
  const program = new Command('vecsnap')
  const execute = async (cmd: Command, action: Action, extra: Partial<SnapshotManagerOptions> = {}): Promise<void> => {
    const globals = cmd.optsWithGlobals<GlobalOptions>()
    const opened = await openManager(globals, extra)
    let outcome: Outcome
    try {
      outcome = await action(opened.manager, globals)
    } finally {
      await opened.close()
    }
    io.out(globals.json === true ? JSON.stringify(outcome.value, null, 2) : outcome.text)
    onExit(outcome.exitCode ?? 0)
  }

  program
    .description('Operate vecsnap snapshots, restore jobs and garbage collection over a data directory or an S3 bucket.')
    .option('--data <dir>', 'data directory: LevelDB metadata in <dir>/meta, objects in <dir>/objects (or env VECSNAP_DATA)')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for objects (credentials from the usual AWS_* variables)')
    .option('--bucket <name>', 'bucket, with --s3-endpoint')
    .option('--prefix <prefix>', 'key prefix inside the bucket, with --s3-endpoint', '')
    .option('--meta <dir>', 'LevelDB metadata directory, with --s3-endpoint')
    .option('--region <region>', 'S3 region, with --s3-endpoint (default: AWS_REGION or us-east-1)')
    .option('--json', 'machine-readable JSON on stdout')
    .showHelpAfterError('(run vecsnap --help for usage)')
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 other failure (usage, unexpected), 2 vecsnap error (stderr: "error <CODE>: message"),\n3 verify found missing/corrupt files, 130 interrupted (Ctrl-C).',
    )

  program
    .command('collections')
    .description('list collections with their flushed segments and rows')
    .action(async (_o, cmd: Command) =>
      execute(cmd, async (m) => {
        const list: CollectionSummary[] = []
        for (const c of await m.catalog.listCollections()) {
          const segments = await m.catalog.listSegments(c.name, { states: ['flushed'] })
          list.push({ ...c, segmentCount: segments.length, rowCount: segments.reduce((n, s) => n + s.numRows, 0) })
        }
        return { value: list, text: renderCollections(list) }
      }),
    )

  program
    .command('snapshots [collection]')
    .description('list committed snapshots, optionally of one collection (by its name at snapshot time)')
    .action(async (collection: string | undefined, _o, cmd: Command) =>
      execute(cmd, async (m) => {
        const list = await m.listSnapshots(collection === undefined ? {} : { collectionName: collection })
        return { value: list, text: renderSnapshots(list) }
      }),
    )

  program
    .command('create <collection> <snapshot>')
    .description("snapshot a collection's flushed segments (metadata only; no data is copied)")
    .option('-d, --description <text>', 'a description kept with the snapshot', '')
    .action(async (collection: string, snapshot: string, o: { description: string }, cmd: Command) =>
      execute(cmd, async (m) => {
        const started = performance.now()
        const info = await m.createSnapshot({ collectionName: collection, snapshotName: snapshot, description: o.description })
        return { value: info, text: renderCreated(info, performance.now() - started) }
      }),
    )

  program
    .command('describe <snapshot>')
    .description('show one snapshot')
    .option('--collection-info', 'include the schema, partitions, properties and index definitions')
    .action(async (snapshot: string, o: { collectionInfo?: boolean }, cmd: Command) =>
      execute(cmd, async (m) => {
        const d = await m.describeSnapshot(snapshot, { includeCollectionInfo: o.collectionInfo === true })
        return { value: d, text: renderDescription(d) }
      }),
    )

  program
    .command('drop <snapshot>')
    .description('drop a snapshot (succeeds when it does not exist; IN_USE while a restore reads it)')
    .action(async (snapshot: string, _o, cmd: Command) =>
      execute(cmd, async (m) => {
        await m.dropSnapshot(snapshot)
        return { value: { dropped: snapshot }, text: `dropped snapshot ${snapshot}` }
      }),
    )

  program
    .command('hold <snapshot> <tag>')
    .description('hold a snapshot under a tag: it cannot be dropped until every hold is released or expired')
    .option('--ttl <ms>', 'the hold expires this many milliseconds from now', (v: string) => Number(v))
    .action(async (snapshot: string, tag: string, o: { ttl?: number }, cmd: Command) =>
      execute(cmd, async (m) => {
        await m.holdSnapshot(snapshot, o.ttl === undefined ? { tag } : { tag, ttlMs: o.ttl })
        return { value: { held: snapshot, tag, ttlMs: o.ttl ?? null }, text: `held snapshot ${snapshot} (${tag}${o.ttl === undefined ? '' : `, ${o.ttl} ms`})` }
      }),
    )

  program
    .command('release <snapshot> <tag>')
    .description('release a hold (succeeds when the snapshot or the hold does not exist)')
    .action(async (snapshot: string, tag: string, _o, cmd: Command) =>
      execute(cmd, async (m) => {
        await m.releaseSnapshot(snapshot, tag)
        return { value: { released: snapshot, tag }, text: `released ${tag} on snapshot ${snapshot}` }
      }),
    )

  addRetentionOptions(
    program
      .command('prune [collection]')
      .description('drop the snapshots a retention policy does not keep (restic forget rules; held ones and those a restore reads are kept)')
      .option('--dry-run', 'show what would be dropped and freed, drop nothing'),
  ).action(async (collection: string | undefined, o: Record<string, unknown>, cmd: Command) =>
    execute(cmd, async (m) => {
      const policy = retentionPolicy(o)
      if (policy === undefined) throw new SnapshotError('INVALID_ARGUMENT', 'say what to keep: --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly or --keep-within')
      const report = await m.pruneSnapshots({ policy, dryRun: o.dryRun === true, ...(collection === undefined ? {} : { collectionName: collection }) })
      return { value: report, text: renderPrune(report), exitCode: report.failed.length > 0 ? EXIT_CODES.snapshotError : 0 }
    }),
  )

  const schedules = program.command('schedules').description('snapshot schedules: list (default), put, delete, run')
  schedules
    .command('list', { isDefault: true })
    .description('list schedules with their last and next runs')
    .action(async (_o, cmd: Command) =>
      execute(cmd, async (m) => {
        const list = await m.listSchedules()
        return { value: list, text: renderSchedules(list) }
      }),
    )
  addRetentionOptions(
    schedules
      .command('put <name> <collection>')
      .description('create or replace a schedule (it runs in the process that runs the loops, or with `vecsnap schedules run`)')
      .addOption(new Option('--every <duration>', 'run every this long (e.g. 1h, 30m)').argParser(parseDuration).conflicts('cron'))
      .option('--cron <expression>', "run at the times of a cron expression, e.g. '0 3 * * *'")
      .option('--cron-time-zone <zone>', 'IANA time zone of --cron (default: --time-zone, else UTC)')
      .option('--snapshot-prefix <prefix>', 'snapshot names are <prefix>-<UTC yyyyMMdd-HHmmss> (default: the schedule name)'),
  ).action(async (name: string, collection: string, o: Record<string, unknown>, cmd: Command) =>
    execute(cmd, async (m) => {
      const retention = retentionPolicy(o)
      const info = await m.putSchedule({
        name,
        collectionName: collection,
        ...(o.every === undefined ? {} : { everyMs: o.every as number }),
        ...(o.cron === undefined ? {} : { cron: o.cron as string }),
        // --time-zone, given for the schedule, is the cron's zone too unless --cron-time-zone says otherwise.
        ...(o.cron === undefined || (o.cronTimeZone ?? o.timeZone) === undefined ? {} : { timeZone: (o.cronTimeZone ?? o.timeZone) as string }),
        ...(o.snapshotPrefix === undefined ? {} : { snapshotPrefix: o.snapshotPrefix as string }),
        ...(retention === undefined ? {} : { retention }),
      })
      return { value: info, text: renderSchedules([info]) }
    }),
  )
  schedules
    .command('delete <name>')
    .description('delete a schedule (its snapshots stay; succeeds when it does not exist)')
    .action(async (name: string, _o, cmd: Command) =>
      execute(cmd, async (m) => {
        await m.deleteSchedule(name)
        return { value: { deleted: name }, text: `deleted schedule ${name}` }
      }),
    )
  schedules
    .command('run')
    .description('run the schedules that are due now, once (e.g. from cron); a slot already run is skipped')
    .action(async (_o, cmd: Command) =>
      execute(cmd, async (m) => {
        const runs = await m.runDueSchedules()
        return { value: runs, text: renderScheduleRuns(runs), exitCode: runs.some((r) => r.error !== undefined) ? EXIT_CODES.snapshotError : 0 }
      }),
    )

  program
    .command('du [collection]')
    .description('space held by collections and snapshots (ZFS-style: referenced, exclusive, written; from metadata)')
    .action(async (collection: string | undefined, _o, cmd: Command) =>
      execute(cmd, async (m) => {
        const report = await m.spaceReport(collection === undefined ? {} : { collectionName: collection })
        return { value: report, text: renderSpace(report) }
      }),
    )

  program
    .command('explain <key>')
    .description("why GC keeps an object or would delete it (GC's own rules: live, snapshot, restore, grace, collectable, orphan)")
    .action(async (key: string, _o, cmd: Command) =>
      execute(cmd, async (m) => {
        const e = await m.explainObject(key)
        return { value: e, text: renderExplanation(e) }
      }),
    )

  program
    .command('restore <snapshot> <target>')
    .description('restore a snapshot into a new collection, with a progress bar until done')
    .option('--no-wait', 'return the job id at once; the job runs whenever a vecsnap process (or SnapshotManager) has the data open')
    .action(async (snapshot: string, target: string, o: { wait: boolean }, cmd: Command) =>
      execute(cmd, async (m, g) => {
        const jobId = await m.restoreSnapshot({ snapshotName: snapshot, targetCollectionName: target })
        if (!o.wait) {
          const job = await m.getRestoreState(jobId)
          return { value: job, text: `restore job ${jobId} started (${job.totalSegments} segments); follow it with: vecsnap job ${jobId} --wait` }
        }
        const job = await waitWithProgress(m, jobId, { json: g.json === true })
        return { value: job, text: `restored ${snapshot} into ${target} (job ${jobId}): ${job.totalSegments} segments in ${(job.timeCostMs / 1000).toFixed(1)} s` }
      }),
    )

  program
    .command('jobs [collection]')
    .description('list restore jobs, optionally only those restoring into <collection>')
    .action(async (collection: string | undefined, _o, cmd: Command) =>
      execute(cmd, async (m) => {
        const list = await m.listRestoreJobs(collection === undefined ? {} : { collectionName: collection })
        return { value: list, text: renderJobs(list) }
      }),
    )

  program
    .command('job <id>')
    .description('show one restore job')
    .option('--wait', 'run and wait for the job here, with a progress bar')
    .action(async (id: string, o: { wait?: boolean }, cmd: Command) =>
      execute(cmd, async (m, g) => {
        const jobId = positiveInt('job id')(id)
        const job = o.wait === true ? await waitWithProgress(m, jobId, { json: g.json === true }) : await m.getRestoreState(jobId)
        return { value: job, text: renderJob(job) }
      }),
    )

  program
    .command('cancel <id>')
    .description('cancel an unfinished restore job and roll it back (a finished job is left as it is)')
    .action(async (id: string, _o, cmd: Command) =>
      execute(cmd, async (m) => {
        const jobId = positiveInt('job id')(id)
        await m.cancelRestore(jobId)
        const job = await m.getRestoreState(jobId)
        return { value: job, text: renderJob(job) }
      }),
    )

  program
    .command('gc')
    .description('run one garbage-collection pass now')
    .option('--dry-run', 'report what would be deleted, delete nothing')
    .addOption(new Option('--drop-grace-ms <ms>', 'keep files of dropped segments this long (default 3 h)').argParser(positiveInt('--drop-grace-ms')))
    .addOption(new Option('--orphan-grace-ms <ms>', 'keep unreferenced files younger than this (default 24 h)').argParser(positiveInt('--orphan-grace-ms')))
    .action(async (o: { dryRun?: boolean; dropGraceMs?: number; orphanGraceMs?: number }, cmd: Command) => {
      const extra: Partial<SnapshotManagerOptions> = {}
      if (o.dropGraceMs !== undefined) extra.dropGraceMs = o.dropGraceMs
      if (o.orphanGraceMs !== undefined) extra.orphanGraceMs = o.orphanGraceMs
      await execute(
        cmd,
        async (m) => {
          const report = await m.runGc({ dryRun: o.dryRun === true })
          return { value: report, text: renderGc(report) }
        },
        extra,
      )
    })

  program
    .command('verify <snapshot>')
    .description('check that every file of a snapshot exists with its size and checksum (exit 3 when not)')
    .action(async (snapshot: string, _o, cmd: Command) =>
      execute(cmd, async (m) => {
        const report = await m.verifySnapshot(snapshot)
        return { value: report, text: renderVerify(snapshot, report), exitCode: report.ok ? 0 : EXIT_CODES.verifyFailed }
      }),
    )

  addRepositoryCommands(program, execute)

  return program
}

function describeError(err: unknown): { code: string; message: string; exitCode: number } {
  if (SnapshotError.is(err)) return { code: err.code, message: err.message, exitCode: EXIT_CODES.snapshotError }
  if (err instanceof Error) return { code: 'INTERNAL', message: err.message, exitCode: EXIT_CODES.failure }
  return { code: 'INTERNAL', message: String(err), exitCode: EXIT_CODES.failure }
}

/**
 * Runs `vecsnap` with `argv` (as `process.argv`) and resolves the exit code. Errors are
 * printed to stderr as `error <CODE>: message`.
 */
export async function run(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let exitCode = 0
  const program = createProgram(io, (code) => {
    exitCode = code
  })
  program.exitOverride()
  program.configureOutput({
    writeOut: (s) => process.stdout.write(s),
    writeErr: (s) => process.stderr.write(s),
    outputError: (s, write) => write(s.replace(/^error: /, 'error USAGE: ')),
  })
  for (const sub of program.commands) sub.exitOverride()
  try {
    await program.parseAsync([...argv])
    return exitCode
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode
    if (err instanceof CliExit) {
      if (err.result !== undefined && argv.includes('--json')) io.out(JSON.stringify(err.result, null, 2))
      io.err(err.message)
      return err.exitCode
    }
    const e = describeError(err)
    io.err(`error ${e.code}: ${e.message}`)
    return e.exitCode
  }
}
