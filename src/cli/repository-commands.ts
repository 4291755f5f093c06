import { Option, type Command } from 'commander'
import { SnapshotError } from '../index.js'
import type { RepositoryReadData, SnapshotManager } from '../index.js'
import type { GlobalOptions } from './context.js'
import { openRepositoryLocation, type RepositoryLocation } from './repository-location.js'
import { renderExport, renderImport, renderRepositoryPrune, renderRepositorySnapshots, renderRepositoryVerify } from './repository-render.js'
import { addRetentionOptions, retentionPolicy } from './retention-options.js'
import { CliExit, EXIT_INTERRUPTED } from './restore-wait.js'
import { transferProgress } from './transfer-progress.js'

/**
 * The repository commands of `vecsnap` (SPEC section 14): `export`, `import` and
 * `repo list|verify|prune`. A repository is a directory or `s3://bucket/prefix`.
 */

/** What a command hands back: the value `--json` prints, its text, and an exit code. */
export interface CommandOutcome {
  value: unknown
  text: string
  exitCode?: number
}

/** Runs a command's action against the manager the global options name (program.ts's `execute`). */
export type ExecuteCommand = (cmd: Command, action: (manager: SnapshotManager, globals: GlobalOptions) => Promise<CommandOutcome>) => Promise<void>

/** Exit code of `repo verify` finding missing or corrupt files (as `vecsnap verify`). */
const EXIT_VERIFY_FAILED = 3

const READ_DATA: readonly string[] = ['none', 'sample', 'all']

const RESUME_HINT = '; run the same command again to resume it (it copies only what is missing)'

function readData(value: string): RepositoryReadData {
  if (!READ_DATA.includes(value)) throw new SnapshotError('INVALID_ARGUMENT', `--read-data must be none, sample or all, got ${value}`)
  return value as RepositoryReadData
}

/** Runs `fn` with the repository `spec` open, releasing it afterwards. */
async function withRepository<T>(spec: string, globals: GlobalOptions, mustExist: boolean, fn: (repo: RepositoryLocation) => Promise<T>): Promise<T> {
  const repo = await openRepositoryLocation(spec, { mustExist, region: globals.region })
  try {
    return await fn(repo)
  } finally {
    repo.dispose()
  }
}

/**
 * Runs a long call with a signal that Ctrl-C fires; an interrupted call ends the CLI with
 * exit code 130 and a hint that running it again resumes it.
 */
async function interruptible<T>(what: string, hint: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController()
  const onSigint = (): void => controller.abort()
  process.on('SIGINT', onSigint)
  try {
    return await fn(controller.signal)
  } catch (err) {
    if (controller.signal.aborted && SnapshotError.is(err, 'ABORTED')) {
      throw new CliExit(EXIT_INTERRUPTED, `interrupted: the ${what} stopped${hint}`)
    }
    throw err
  } finally {
    process.off('SIGINT', onSigint)
  }
}

/** Adds `export`, `import` and `repo` to the program. */
export function addRepositoryCommands(program: Command, execute: ExecuteCommand): void {
  program
    .command('export <snapshot>')
    .description('copy a snapshot into a repository (a directory or s3://bucket/prefix): only the files it lacks, with a progress bar')
    .requiredOption('--to <repository>', 'the repository: a directory, or s3://bucket/prefix (endpoint and credentials from AWS_ENDPOINT_URL, AWS_* variables)')
    .action(async (snapshot: string, o: { to: string }, cmd: Command) =>
      execute(cmd, (m, g) =>
        withRepository(o.to, g, false, async (repo) => {
          const view = transferProgress(`export ${snapshot}`, g.json === true)
          try {
            const report = await interruptible('export', RESUME_HINT, (signal) => m.exportSnapshot(snapshot, { to: repo.store, prefix: repo.prefix, signal, onProgress: (p) => view.update(p) }))
            return { value: report, text: renderExport(report, repo.display) }
          } finally {
            view.stop()
          }
        }),
      ),
    )

  program
    .command('import <repositorySnapshotId> <snapshot>')
    .description('register a snapshot of a repository as <snapshot> here, copying its files in (checked by size and SHA-256), with a progress bar')
    .requiredOption('--from <repository>', 'the repository: a directory, or s3://bucket/prefix')
    .action(async (id: string, snapshot: string, o: { from: string }, cmd: Command) =>
      execute(cmd, (m, g) =>
        withRepository(o.from, g, true, async (repo) => {
          const view = transferProgress(`import ${id}`, g.json === true)
          try {
            const info = await interruptible('import', RESUME_HINT, (signal) =>
              m.importSnapshot({ from: repo.store, prefix: repo.prefix, repositorySnapshotId: id, snapshotName: snapshot, signal, onProgress: (p) => view.update(p) }),
            )
            return { value: info, text: renderImport(info, id, repo.display) }
          } finally {
            view.stop()
          }
        }),
      ),
    )

  const repo = program.command('repo').description('repositories of exported snapshots: list, verify, prune')
  repo
    .command('list')
    .description('list the snapshots a repository holds')
    .requiredOption('--from <repository>', 'the repository: a directory, or s3://bucket/prefix')
    .action(async (o: { from: string }, cmd: Command) =>
      execute(cmd, (m, g) =>
        withRepository(o.from, g, true, async (r) => {
          const list = await m.listRepositorySnapshots({ store: r.store, prefix: r.prefix })
          return { value: list, text: renderRepositorySnapshots(list) }
        }),
      ),
    )
  repo
    .command('verify')
    .description("check a repository's files: existence and size, and SHA-256 of a sample or of all (exit 3 when not ok)")
    .requiredOption('--from <repository>', 'the repository: a directory, or s3://bucket/prefix')
    .addOption(new Option('--read-data <what>', 'none: existence and size; sample: also SHA-256 of a tenth; all: SHA-256 of every file').argParser(readData).default('none'))
    .action(async (o: { from: string; readData: RepositoryReadData }, cmd: Command) =>
      execute(cmd, (m, g) =>
        withRepository(o.from, g, true, async (r) => {
          const report = await interruptible('verify', '', (signal) => m.verifyRepository({ store: r.store, prefix: r.prefix, readData: o.readData, signal }))
          return { value: report, text: renderRepositoryVerify(r.display, report), exitCode: report.ok ? 0 : EXIT_VERIFY_FAILED }
        }),
      ),
    )
  addRetentionOptions(
    repo
      .command('prune')
      .description("drop a repository's snapshots a retention policy does not keep (per collection, restic forget rules), then the files no remaining one references")
      .requiredOption('--from <repository>', 'the repository: a directory, or s3://bucket/prefix')
      .option('--dry-run', 'show what would be dropped and freed, delete nothing'),
  ).action(async (o: Record<string, unknown>, cmd: Command) =>
    execute(cmd, (m, g) => {
      const policy = retentionPolicy(o)
      if (policy === undefined) throw new SnapshotError('INVALID_ARGUMENT', 'say what to keep: --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly or --keep-within')
      return withRepository(o.from as string, g, true, async (r) => {
        const report = await m.pruneRepository({ store: r.store, prefix: r.prefix, policy, dryRun: o.dryRun === true })
        return { value: report, text: renderRepositoryPrune(r.display, report) }
      })
    }),
  )
}
