import cliProgress from 'cli-progress'
import type { RepositoryProgress } from '../index.js'
import { formatBytes } from './format.js'

/** Shows the progress of an export or import. */
export interface TransferProgressView {
  /** The `onProgress` callback to hand to the call. */
  update(progress: RepositoryProgress): void
  stop(): void
}

const done = (p: RepositoryProgress): number => p.copiedBytes + p.skippedBytes
const doneFiles = (p: RepositoryProgress): number => p.copiedFiles + p.skippedFiles

function barView(verb: string): TransferProgressView {
  const bar = new cliProgress.SingleBar(
    {
      format: ` ${verb} {bar} {percentage}% | {files} files | {done} / {total_bytes} ({skipped} already there) | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  )
  let started = false
  return {
    update(p) {
      const payload = { files: `${doneFiles(p)}/${p.totalFiles}`, done: formatBytes(done(p)), total_bytes: formatBytes(p.totalBytes), skipped: formatBytes(p.skippedBytes) }
      const total = Math.max(p.totalBytes, 1)
      const value = p.totalBytes === 0 ? (doneFiles(p) >= p.totalFiles ? 1 : 0) : done(p)
      if (!started) {
        bar.start(total, value, payload)
        started = true
      } else {
        bar.setTotal(total)
        bar.update(value, payload)
      }
    },
    stop() {
      if (started) bar.stop()
      started = false
    },
  }
}

function lineView(verb: string): TransferProgressView {
  let lastStep = -1
  return {
    update(p) {
      const percent = p.totalBytes === 0 ? (doneFiles(p) >= p.totalFiles ? 100 : 0) : Math.floor((done(p) * 100) / p.totalBytes)
      const step = Math.floor(percent / 25)
      if (step === lastStep) return
      lastStep = step
      process.stderr.write(`${verb}: ${percent}% (${doneFiles(p)}/${p.totalFiles} files, ${formatBytes(done(p))} / ${formatBytes(p.totalBytes)}, ${formatBytes(p.skippedBytes)} already there)\n`)
    },
    stop() {},
  }
}

const silentView: TransferProgressView = { update() {}, stop() {} }

/**
 * The progress output of `export` and `import`: a bar with bytes and ETA on stderr when
 * stdout is a terminal, a line at each quarter otherwise, nothing with `--json`.
 */
export function transferProgress(verb: string, json: boolean): TransferProgressView {
  if (json) return silentView
  return process.stdout.isTTY === true ? barView(verb) : lineView(verb)
}
