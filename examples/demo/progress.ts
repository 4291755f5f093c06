import cliProgress from 'cli-progress'
import type { RestoreJobInfo } from '../../src/index.js'

/** Shows a restore job's progress: a live bar on a terminal, a few plain lines otherwise. */
export interface RestoreProgressView {
  update(job: RestoreJobInfo): void
  stop(): void
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1)
}

/** A cli-progress bar on a TTY (segments and MiB), else a line per 25 % step. */
export function restoreProgressView(label: string): RestoreProgressView {
  if (process.stdout.isTTY !== true) {
    let lastStep = -1
    return {
      update(job) {
        const step = Math.floor(job.progress / 25)
        if (step === lastStep) return
        lastStep = step
        console.log(`  ${label}: ${String(job.progress).padStart(3)}%  ${job.copiedSegments}/${job.totalSegments} segments, ${mib(job.copiedBytes)}/${mib(job.totalBytes)} MiB`)
      },
      stop() {},
    }
  }
  const bar = new cliProgress.SingleBar(
    { format: `  ${label} {bar} {percentage}% | {value}/{total} segments | {copied}/{totalMib} MiB | ETA {eta_formatted}`, hideCursor: true, stream: process.stdout },
    cliProgress.Presets.shades_classic,
  )
  let started = false
  return {
    update(job) {
      const payload = { copied: mib(job.copiedBytes), totalMib: mib(job.totalBytes) }
      if (!started) {
        bar.start(job.totalSegments, job.copiedSegments, payload)
        started = true
      } else {
        bar.setTotal(job.totalSegments)
        bar.update(job.copiedSegments, payload)
      }
    },
    stop() {
      if (started) bar.stop()
    },
  }
}
