import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

/** A running etcd started by {@link startEtcd}. */
export interface EtcdServer {
  /** Client URL, e.g. `http://127.0.0.1:40123`. */
  endpoint: string
  /** Kills this etcd (only its PID) and removes its data directory. */
  stop(): Promise<void>
}

/** Why etcd tests are skipped. */
export interface EtcdSkip {
  skip: string
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The etcd binary on PATH or at /usr/bin/etcd, if any. */
export function findEtcd(): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean)
  return [...dirs.map((d) => join(d, 'etcd')), '/usr/bin/etcd'].find(isExecutable)
}

/** Installs Debian's etcd-server when running as root with apt-get; returns why not otherwise. */
function tryInstall(): string | undefined {
  if (process.getuid?.() !== 0) return 'etcd is not installed and the tests do not run as root to install it'
  const apt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' })
  if (apt.status !== 0) return 'etcd is not installed and apt-get is not available'
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const run = (args: string[]) => spawnSync('apt-get', args, { env, encoding: 'utf8', timeout: 60_000 })
  let result = run(['install', '-y', '-qq', 'etcd-server'])
  if (result.status !== 0) {
    run(['update', '-qq'])
    result = run(['install', '-y', '-qq', 'etcd-server'])
  }
  if (result.status !== 0) return `etcd is not installed and apt-get install etcd-server failed: ${(result.stderr || String(result.error)).trim().slice(-300)}`
  return undefined
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

async function answers(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) })
    return res.ok && ((await res.json()) as { health?: string }).health === 'true'
  } catch {
    return false
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()))
}

/**
 * Starts a single-member etcd on 127.0.0.1 with free ports, a temporary data directory and
 * no limit flags (etcd's defaults: --max-txn-ops 128, --max-request-bytes 1.5 MiB: vecsnap needs
 * nothing more), and waits until it is healthy. Installs `etcd-server` with apt-get
 * first when etcd is missing and the tests run as root. Resolves `{ skip }` with a reason
 * when etcd cannot be found, installed or started.
 */
export async function startEtcd(): Promise<EtcdServer | EtcdSkip> {
  let bin = findEtcd()
  if (bin === undefined) {
    const why = tryInstall()
    bin = findEtcd()
    if (bin === undefined) return { skip: why ?? 'etcd-server was installed but no etcd binary was found' }
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'vecsnap-etcd-'))
  const clientPort = await freePort()
  let peerPort = await freePort()
  while (peerPort === clientPort) peerPort = await freePort()
  const endpoint = `http://127.0.0.1:${clientPort}`
  const peer = `http://127.0.0.1:${peerPort}`
  const args = [
    '--name', 'default',
    '--data-dir', dataDir,
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `default=${peer}`,
  ]
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  // If the test process exits without calling stop(), take this etcd down with it.
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  let log = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4_000)
  })
  const stop = async () => {
    process.removeListener('exit', killOnExit)
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited(child)
      clearTimeout(timer)
    }
    await rm(dataDir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break
    if (await answers(endpoint)) return { endpoint, stop }
    await new Promise((r) => setTimeout(r, 100))
  }
  await stop()
  return { skip: `etcd did not become healthy at ${endpoint}: ${log.trim().split('\n').slice(-3).join(' | ')}` }
}
