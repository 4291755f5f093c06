import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { WorkerConfig } from './fixtures/worker.js'

const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** An error answered by a worker. */
export interface WorkerError {
  code: string
  message: string
}

/** An event a worker reported. */
export interface WorkerEvent {
  event: string
  data: any
  at: number
}

/** A SnapshotManager in a child process (see fixtures/worker.ts). */
export class Worker {
  readonly name: string
  readonly child: ChildProcess
  readonly events: WorkerEvent[] = []
  #stderr = ''
  #nextId = 1
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>()
  #listeners: (() => void)[] = []
  readonly exited: Promise<void>

  private constructor(name: string, child: ChildProcess) {
    this.name = name
    this.child = child
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-8_000)
    })
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()))
    void this.exited.then(() => {
      for (const p of this.#pending.values()) p.reject({ code: 'EXITED', message: `worker ${name} exited` })
      this.#pending.clear()
    })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: any
      try {
        msg = JSON.parse(line)
      } catch {
        return
      }
      if (msg.event !== undefined) {
        this.events.push({ event: msg.event, data: msg.data, at: Date.now() })
        for (const l of this.#listeners) l()
        return
      }
      const p = this.#pending.get(msg.id)
      if (p === undefined) return
      this.#pending.delete(msg.id)
      if (msg.ok) p.resolve(msg.result)
      else p.reject(msg.error)
    })
  }

  /** Spawns a worker and waits until it is ready (not yet open). */
  static async spawn(name: string, config: WorkerConfig): Promise<Worker> {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(config)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    const worker = new Worker(name, child)
    await worker.waitFor((e) => e.event === 'ready', 20_000)
    return worker
  }

  /** Runs `op` in the worker; rejects with the worker's `{ code, message }`. */
  call<T = any>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`)
    })
  }

  /** Settles `op` as `{ ok, result | error }`, never rejecting. */
  async settle<T = any>(op: string, args: Record<string, unknown> = {}): Promise<{ ok: true; result: T } | { ok: false; error: WorkerError }> {
    try {
      return { ok: true, result: await this.call<T>(op, args) }
    } catch (error) {
      return { ok: false, error: error as WorkerError }
    }
  }

  /** Resolves with the first event (past or future) matching `pred`. */
  waitFor(pred: (e: WorkerEvent) => boolean, timeoutMs = 15_000): Promise<WorkerEvent> {
    const hit = this.events.find(pred)
    if (hit !== undefined) return Promise.resolve(hit)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${this.name}: timed out waiting for an event; got ${JSON.stringify(this.events.map((e) => e.event))}; stderr: ${this.#stderr}`))
      }, timeoutMs)
      const check = () => {
        const e = this.events.find(pred)
        if (e === undefined) return
        done()
        resolve(e)
      }
      const done = () => {
        clearTimeout(timer)
        this.#listeners = this.#listeners.filter((l) => l !== check)
      }
      this.#listeners.push(check)
    })
  }

  /** True once the worker reported that it runs the loops (and not since that it stopped). */
  get leading(): boolean {
    const changes = this.events.filter((e) => e.event === 'leadershipChanged')
    return changes.length > 0 && changes[changes.length - 1].data.leader === true
  }

  get stderr(): string {
    return this.#stderr
  }

  /** Background errors the worker reported. */
  get loopErrors(): any[] {
    return this.events.filter((e) => e.event === 'loopError').map((e) => e.data)
  }

  /** Closes the manager and ends the process (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    await this.call('close').catch(() => undefined)
    this.child.stdin!.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
    await this.exited
    clearTimeout(timer)
  }

  /** SIGKILL: no close, no resign, no keep-alive. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL')
    await this.exited
  }
}

/** Polls `fn` every `intervalMs` until it returns a defined value. */
export async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await fn()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
