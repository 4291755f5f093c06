import { createInterface } from 'node:readline'
import cliProgress from 'cli-progress'
import type { RestoreJobInfo, SnapshotManager } from '../index.js'
import { formatBytes } from './format.js'

/** Ends the CLI with an exit code and a message on stderr (not an error of vecsnap). */
export class CliExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    /** With `--json`, printed on stdout as the command's result before exiting. */
    readonly result?: unknown,
  ) {
    super(message)
    this.name = 'CliExit'
  }
}

/** Exit code of a run interrupted by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130

/** Shows a job's progress: a bar on a terminal, a few plain lines otherwise, nothing with `--json`. */
interface ProgressView {
  update(job: RestoreJobInfo): void
  pause(): void
  resume(): void
  stop(): void
}

function barView(job: RestoreJobInfo): ProgressView {
  const bar = new cliProgress.SingleBar(
    {
      format: ' {bar} {percentage}% | {segments} segments | {copied} / {total_bytes} | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  )
  const payload = (j: RestoreJobInfo): Record<string, string> => ({
    segments: `${j.copiedSegments}/${j.totalSegments}`,
    copied: formatBytes(j.copiedBytes),
    total_bytes: formatBytes(j.totalBytes),
  })
  const total = (j: RestoreJobInfo): number => Math.max(j.totalBytes, 1)
  const value = (j: RestoreJobInfo): number => (j.totalBytes === 0 ? (j.state === 'completed' ? 1 : 0) : j.copiedBytes)
  let last = job
  let running = false
  const start = (): void => {
    bar.start(total(last), value(last), payload(last))
    running = true
  }
  start()
  return {
    update(j) {
      last = j
      if (!running) return
      bar.setTotal(total(j))
      bar.update(value(j), payload(j))
    },
    pause() {
      if (running) bar.stop()
      running = false
    },
    resume() {
      if (!running) start()
    },
    stop() {
      if (running) bar.stop()
      running = false
    },
  }
}

function lineView(): ProgressView {
  let lastStep = -1
  return {
    update(j) {
      const step = Math.floor(j.progress / 25)
      if (step === lastStep) return
      lastStep = step
      process.stderr.write(`restore job ${j.jobId}: ${j.progress}% (${j.copiedSegments}/${j.totalSegments} segments, ${formatBytes(j.copiedBytes)} / ${formatBytes(j.totalBytes)})\n`)
    },
    pause() {},
    resume() {},
    stop() {},
  }
}

const silentView: ProgressView = { update() {}, pause() {}, resume() {}, stop() {} }

type Answer = 'cancel' | 'detach' | 'wait'

/** Asks on the terminal what Ctrl-C should do; a second Ctrl-C while asking detaches. */
function ask(jobId: number): Promise<Answer> {
  return new Promise((resolveAnswer) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr })
    let done = false
    const finish = (a: Answer): void => {
      if (done) return
      done = true
      rl.close()
      resolveAnswer(a)
    }
    rl.on('SIGINT', () => {
      process.stderr.write('\n')
      finish('detach')
    })
    rl.on('close', () => finish('detach'))
    rl.question(`\nCancel restore job ${jobId}? y = cancel and roll back, n = leave it (it resumes the next time vecsnap opens this data), c = keep waiting [y/N/c] `, (text) => {
      const t = text.trim().toLowerCase()
      finish(t === 'y' || t === 'yes' ? 'cancel' : t === 'c' ? 'wait' : 'detach')
    })
  })
}

/** Options of {@link waitWithProgress}. */
export interface WaitWithProgressOptions {
  /** `--json`: no progress output at all. */
  json: boolean
}

/**
 * Waits for a restore job in this process (the job's copy tasks run here), showing a
 * progress bar with bytes and ETA when stdout is a terminal and a few plain lines on
 * stderr otherwise. Ctrl-C on a terminal asks whether to cancel the job; elsewhere it
 * stops waiting and leaves the job to resume the next time a manager opens the data.
 */
export async function waitWithProgress(manager: SnapshotManager, jobId: number, o: WaitWithProgressOptions): Promise<RestoreJobInfo> {
  const interactive = process.stdout.isTTY === true && process.stdin.isTTY === true
  let view: ProgressView = silentView
  // Ctrl-C settles `interrupted` instead of aborting the wait: the wait is left to end
  // on its own when the manager closes (its rejection is handled below).
  let interrupt: (outcome: 'cancelled' | 'detached') => void = () => undefined
  const interrupted = new Promise<'cancelled' | 'detached'>((resolveOutcome) => {
    interrupt = resolveOutcome
  })
  let asking = false
  let cancelling = false
  const onSigint = (): void => {
    if (asking) return
    if (!interactive) return interrupt('detached')
    asking = true
    view.pause()
    ask(jobId).then(async (answer) => {
      asking = false
      if (answer === 'wait') return view.resume()
      if (answer === 'detach') return interrupt('detached')
      cancelling = true
      process.stderr.write(`cancelling restore job ${jobId} (rolling back)…\n`)
      await manager.cancelRestore(jobId).catch(() => undefined)
      interrupt('cancelled')
    }, () => interrupt('detached'))
  }
  process.on('SIGINT', onSigint)
  try {
    const first = await manager.getRestoreState(jobId)
    view = o.json ? silentView : process.stdout.isTTY === true ? barView(first) : lineView()
    view.update(first)
    const waiting = manager.waitForRestore(jobId, { onProgress: (j) => view.update(j) })
    waiting.catch(() => undefined)
    const settled = await Promise.race([waiting.then((job) => ({ job }), (error: unknown) => ({ error })), interrupted.then((outcome) => ({ outcome }))])
    view.stop()
    if ('job' in settled) return settled.job
    // A wait that fails because the user just cancelled the job is the cancellation.
    if ('error' in settled && !cancelling) throw settled.error
    const outcome = 'outcome' in settled ? settled.outcome : await interrupted
    const job = await manager.getRestoreState(jobId).catch(() => undefined)
    if (outcome === 'cancelled') throw new CliExit(EXIT_INTERRUPTED, `restore job ${jobId} was ${job?.state ?? 'cancelled'} and rolled back`, job)
    throw new CliExit(EXIT_INTERRUPTED, `interrupted: restore job ${jobId} was left ${job?.state ?? 'unfinished'}; it resumes the next time vecsnap (or any SnapshotManager) opens this data`, job)
  } finally {
    process.off('SIGINT', onSigint)
  }
}
