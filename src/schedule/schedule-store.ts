import { Cron } from 'croner'
import { SnapshotError, throwIfAborted } from '../errors.js'
import { expectString } from '../meta/catalog-validate.js'
import { keys } from '../meta/keys.js'
import { prefixRange, type MetaStore } from '../meta/meta-store.js'
import type { MetaTxn, Transactor } from '../meta/transaction.js'
import { validateRetentionPolicy } from '../policy/retention.js'
import { validateSnapshotName } from '../snapshot/snapshot-record.js'
import type { AbortOptions } from '../types.js'
import type { PutScheduleRequest, ScheduleDefinition, ScheduleError, ScheduleInfo } from './schedule-types.js'

/**
 * Schedules (SPEC section 12): one small MetaStore record each, `p/sched/{name}`, holding the
 * definition and what the last run did. Any manager can put, list and delete them; only
 * the elected loop runner runs them (`ScheduleLoop`), and it claims each slot in a
 * conditional batch on the record before it creates the snapshot, so a slot is run once
 * even if two processes ever believed they led.
 * @internal
 */

/** The stored record. */
export interface ScheduleRecord extends ScheduleDefinition {
  snapshotPrefix: string
  /** When the schedule was put, or its timing (`everyMs`, `cron`, `timeZone`) last changed: `everyMs` slots count from here. */
  createdAt: number
  /** The last slot claimed by a run, epoch milliseconds. */
  lastSlot?: number
  /** When the run of `lastSlot` was claimed or last renewed its claim, while it has not finished (`finish` clears it). */
  runningSince?: number
  lastRunAt?: number
  lastSnapshot?: string
  lastError?: ScheduleError
}

/** Shortest `everyMs`. */
export const MIN_EVERY_MS = 1_000

/** Longest schedule name. */
export const MAX_SCHEDULE_NAME_LENGTH = 128

/** The suffix of a scheduled snapshot's name: `-yyyyMMdd-HHmmss`, 16 characters. */
const SUFFIX_LENGTH = 16

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

/** Throws unless `name` is a valid schedule name. */
export function validateScheduleName(name: unknown): asserts name is string {
  expectString(name, 'name')
  if (!NAME_RE.test(name) || name.includes('..')) {
    throw new SnapshotError(
      'INVALID_ARGUMENT',
      `invalid schedule name ${JSON.stringify(name.slice(0, 64))}: use 1–${MAX_SCHEDULE_NAME_LENGTH} characters of letters, digits, '_', '.' and '-', starting with a letter, digit or '_', without '..'`,
    )
  }
}

/** Parsed expressions kept (by zone and expression). */
const MAX_CACHED_CRONS = 256
const crons = new Map<string, Cron>()

/** A paused croner job for the expression and zone (never fires; only computes times). */
function cronOf(expression: string, timeZone: string): Cron {
  const id = `${timeZone} ${expression}`
  let job = crons.get(id)
  if (job === undefined) {
    try {
      job = new Cron(expression, { paused: true, timezone: timeZone })
    } catch (cause) {
      throw new SnapshotError('INVALID_ARGUMENT', `invalid cron expression ${JSON.stringify(expression)}: ${(cause as Error).message}`, { cause })
    }
    if (crons.size >= MAX_CACHED_CRONS) crons.clear()
    crons.set(id, job)
  }
  return job
}

const REQUEST_FIELDS = new Set(['name', 'collectionName', 'everyMs', 'cron', 'timeZone', 'snapshotPrefix', 'retention', 'signal'])

/** Checks a request (an unknown field is `INVALID_ARGUMENT`: a typo must not change when it runs) and returns the definition to store. */
export function validateScheduleRequest(request: PutScheduleRequest): ScheduleDefinition & { snapshotPrefix: string } {
  if (typeof request !== 'object' || request === null) throw new TypeError(`Expected \`request\` to be an object, got \`${request === null ? 'null' : typeof request}\``)
  for (const field of Object.keys(request)) {
    if (!REQUEST_FIELDS.has(field)) throw new SnapshotError('INVALID_ARGUMENT', `unknown schedule field \`${field}\` (known: ${[...REQUEST_FIELDS].join(', ')})`)
  }
  const { name, collectionName, everyMs, cron, timeZone, retention } = request
  validateScheduleName(name)
  expectString(collectionName, 'collectionName')
  if (collectionName === '') throw new SnapshotError('INVALID_ARGUMENT', '`collectionName` must be a non-empty string')
  const snapshotPrefix = request.snapshotPrefix ?? name
  expectString(snapshotPrefix, 'snapshotPrefix')
  // The names it makes must be valid snapshot names.
  if (snapshotPrefix.length + SUFFIX_LENGTH > 255) throw new SnapshotError('INVALID_ARGUMENT', `\`snapshotPrefix\` is too long: at most ${255 - SUFFIX_LENGTH} characters`)
  validateSnapshotName(`${snapshotPrefix}-20260101-000000`, 'snapshotPrefix')
  if ((everyMs === undefined) === (cron === undefined)) throw new SnapshotError('INVALID_ARGUMENT', 'a schedule needs exactly one of `everyMs` and `cron`')
  const definition: ScheduleDefinition & { snapshotPrefix: string } = { name, collectionName, snapshotPrefix }
  if (everyMs !== undefined) {
    if (typeof everyMs !== 'number') throw new TypeError(`Expected \`everyMs\` to be a number, got \`${typeof everyMs}\``)
    if (!Number.isSafeInteger(everyMs) || everyMs < MIN_EVERY_MS) throw new SnapshotError('INVALID_ARGUMENT', `\`everyMs\` must be an integer ≥ ${MIN_EVERY_MS}, got ${everyMs}`)
    if (timeZone !== undefined) throw new SnapshotError('INVALID_ARGUMENT', '`timeZone` applies to `cron` only')
    definition.everyMs = everyMs
  } else {
    expectString(cron, 'cron')
    if (timeZone !== undefined) expectString(timeZone, 'timeZone')
    const zone = timeZone ?? 'UTC'
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: zone })
    } catch (cause) {
      throw new SnapshotError('INVALID_ARGUMENT', `unknown time zone ${JSON.stringify(zone)} (use an IANA name such as 'Europe/Paris')`, { cause })
    }
    if (cronOf(cron, zone).nextRun(new Date()) === null) throw new SnapshotError('INVALID_ARGUMENT', `cron expression ${JSON.stringify(cron)} never fires`)
    definition.cron = cron
    if (timeZone !== undefined) definition.timeZone = timeZone
  }
  if (retention !== undefined) {
    validateRetentionPolicy(retention)
    definition.retention = { ...retention }
  }
  return definition
}

/** The first slot strictly after `t`; undefined when there is none (a cron with no future time). */
export function slotAfter(r: ScheduleRecord, t: number): number | undefined {
  if (r.everyMs !== undefined) {
    if (t < r.createdAt) return r.createdAt + r.everyMs
    return r.createdAt + (Math.floor((t - r.createdAt) / r.everyMs) + 1) * r.everyMs
  }
  return cronOf(r.cron!, r.timeZone ?? 'UTC').nextRun(new Date(t))?.getTime()
}


/**
 * A run claimed and not renewed for this long died with its process (a run under way renews
 * its claim every {@link CLAIM_RENEW_MS}): its slot is run again.
 */
export const CLAIM_STALE_MS = 10 * 60_000

/** How often a run under way renews its claim (`runningSince`), well within {@link CLAIM_STALE_MS}. */
export const CLAIM_RENEW_MS = CLAIM_STALE_MS / 5

/**
 * The slot of a run that was claimed and never finished (its process crashed between the
 * claim and the record of its outcome), once {@link CLAIM_STALE_MS} has passed; else
 * undefined. Running it again is safe: a snapshot the crashed run committed is found
 * (`ALREADY_EXISTS`, this schedule's) and the run goes on to its retention.
 */
export function abandonedSlot(r: ScheduleRecord, now: number): number | undefined {
  return r.lastSlot !== undefined && r.runningSince !== undefined && now - r.runningSince >= CLAIM_STALE_MS ? r.lastSlot : undefined
}

/** The next slot to run: the first after the last claimed one (or after `createdAt`). */
export function nextSlot(r: ScheduleRecord): number | undefined {
  return slotAfter(r, Math.max(r.lastSlot ?? Number.NEGATIVE_INFINITY, r.createdAt))
}

/**
 * The slot to run at `now`, or undefined when none is due. After downtime several slots
 * may have passed: the latest of them is run, once (an overdue schedule runs once, not
 * once per missed slot).
 */
export function dueSlot(r: ScheduleRecord, now: number): number | undefined {
  const next = nextSlot(r)
  if (next === undefined || next > now) return undefined
  if (r.everyMs !== undefined) return r.createdAt + Math.floor((now - r.createdAt) / r.everyMs) * r.everyMs
  // The latest cron slot ≤ now: look back from now over a window that doubles until it holds
  // a slot, then walk forward the few slots inside it (never the whole downtime).
  let slot = next
  for (let window = 1_000; now - window > next; window *= 2) {
    const s = slotAfter(r, now - window)
    if (s !== undefined && s <= now) {
      slot = s
      break
    }
  }
  for (;;) {
    const after = slotAfter(r, slot)
    if (after === undefined || after > now) return slot
    slot = after
  }
}

const two = (n: number): string => String(n).padStart(2, '0')

/** `{prefix}-yyyyMMdd-HHmmss` of the slot, in UTC. */
export function scheduledSnapshotName(prefix: string, slot: number): string {
  const d = new Date(slot)
  return `${prefix}-${d.getUTCFullYear()}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}-${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}`
}

/** The public view of a record at `now`: `nextRunAt` is the slot that runs next (for an overdue schedule, the latest slot that passed). */
export function toScheduleInfo(r: ScheduleRecord, now: number): ScheduleInfo {
  const info: ScheduleInfo = { ...r }
  delete (info as Partial<ScheduleRecord>).lastSlot
  delete (info as Partial<ScheduleRecord>).runningSince
  const next = dueSlot(r, now) ?? abandonedSlot(r, now) ?? nextSlot(r)
  if (next !== undefined) info.nextRunAt = next
  return info
}

/** Puts, lists and deletes schedule records. @internal */
export class ScheduleStore {
  readonly #meta: MetaStore
  readonly #transactor: Transactor
  readonly #now: () => number

  constructor(deps: { meta: MetaStore; transactor: Transactor; now: () => number }) {
    this.#meta = deps.meta
    this.#transactor = deps.transactor
    this.#now = deps.now
  }

  /**
   * Creates or replaces a schedule. What the last run did is kept; changing the timing
   * restarts `everyMs` slots from now, and the next run is the first slot after the last
   * one run (so replacing a schedule never makes it run twice for one slot).
   */
  async put(request: PutScheduleRequest, collectionExists: (name: string, options: AbortOptions) => Promise<boolean>): Promise<ScheduleInfo> {
    const definition = validateScheduleRequest(request)
    const { signal } = request
    throwIfAborted(signal)
    if (!(await collectionExists(definition.collectionName, { signal }))) throw new SnapshotError('NOT_FOUND', `collection not found: ${definition.collectionName}`)
    return this.#transactor.run(async (tx) => {
      const now = this.#now()
      const old = await tx.getJson<ScheduleRecord>(keys.schedule(definition.name))
      const sameTiming = old !== undefined && old.everyMs === definition.everyMs && old.cron === definition.cron && old.timeZone === definition.timeZone
      const record: ScheduleRecord = { ...definition, createdAt: sameTiming ? old.createdAt : now }
      if (old !== undefined) {
        for (const field of ['lastSlot', 'lastRunAt', 'lastSnapshot', 'lastError'] as const) if (old[field] !== undefined) Object.assign(record, { [field]: old[field] })
        // A run under way keeps its claim; one abandoned under another timing is not run again.
        if (sameTiming && old.runningSince !== undefined) record.runningSince = old.runningSince
      }
      tx.putJson(keys.schedule(definition.name), record)
      return toScheduleInfo(record, now)
    }, { signal })
  }

  /** Every schedule, by name. */
  async list(options: AbortOptions = {}): Promise<ScheduleRecord[]> {
    throwIfAborted(options.signal)
    const out: ScheduleRecord[] = []
    for await (const [, value] of this.#meta.iterate(prefixRange(keys.schedulePrefix), options)) out.push(JSON.parse(value) as ScheduleRecord)
    return out
  }

  /** Deletes a schedule; idempotent. The snapshots it created stay. */
  async delete(name: string, options: AbortOptions = {}): Promise<void> {
    validateScheduleName(name)
    await this.#transactor.run(async (tx) => {
      if ((await tx.get(keys.schedule(name))) !== undefined) tx.del(keys.schedule(name))
    }, options)
  }

  /**
   * Claims `slot` of schedule `name` for a run: in one conditional batch, if the schedule
   * still exists, has the same timing and has not claimed this slot or a later one (or
   * claimed this slot in a run that was abandoned, as `seen` shows it), records it as the
   * last slot, running since now. Resolves the record as claimed, or undefined when someone
   * else ran it (or the schedule changed or went).
   */
  claim(seen: ScheduleRecord, slot: number, options: AbortOptions): Promise<ScheduleRecord | undefined> {
    return this.#transactor.run(async (tx) => {
      const now = this.#now()
      const r = await tx.getJson<ScheduleRecord>(keys.schedule(seen.name))
      if (r === undefined || r.createdAt !== seen.createdAt) return undefined
      // Two runners retrying one abandoned run: the first one's claim changes `runningSince`.
      const retry = r.lastSlot === slot && abandonedSlot(r, now) === slot && r.runningSince === seen.runningSince
      if ((r.lastSlot ?? Number.NEGATIVE_INFINITY) >= slot && !retry) return undefined
      const claimed: ScheduleRecord = { ...r, lastSlot: slot, lastRunAt: now, runningSince: now }
      tx.putJson(keys.schedule(r.name), claimed)
      return claimed
    }, options)
  }

  /**
   * Renews the claim of a run under way: moves `runningSince` to now if the record is still
   * that claim's (`slot`, running since `since`). Resolves the new `runningSince`, or
   * undefined when the claim ended (finished, given back, or taken over by a retry after it
   * went stale), or the schedule changed or went.
   */
  renew(name: string, slot: number, since: number, options: AbortOptions = {}): Promise<number | undefined> {
    return this.#transactor.run(async (tx) => {
      const r = await tx.getJson<ScheduleRecord>(keys.schedule(name))
      if (r === undefined || r.lastSlot !== slot || r.runningSince !== since) return undefined
      const now = this.#now()
      if (now === since) return since
      tx.putJson(keys.schedule(name), { ...r, runningSince: now })
      return now
    }, options)
  }

  /**
   * Gives back a claimed slot (a run stopped by an abort): restores the last slot and run
   * time the schedule had before, if the record is still that claim's.
   */
  async unclaim(before: ScheduleRecord, slot: number): Promise<void> {
    await this.#transactor.run(async (tx) => {
      const r = await tx.getJson<ScheduleRecord>(keys.schedule(before.name))
      if (r === undefined || r.lastSlot !== slot || r.createdAt !== before.createdAt) return
      const back: ScheduleRecord = { ...r }
      if (before.lastSlot === undefined) delete back.lastSlot
      else back.lastSlot = before.lastSlot
      if (before.lastRunAt === undefined) delete back.lastRunAt
      else back.lastRunAt = before.lastRunAt
      if (before.runningSince === undefined) delete back.runningSince
      else back.runningSince = before.runningSince
      tx.putJson(keys.schedule(before.name), back)
    })
  }

  /** Records how the run of `slot` ended (the snapshot it created, the error it met), if the record still is that run's. */
  async finish(name: string, slot: number, outcome: { snapshotName?: string; error?: ScheduleError }, options: AbortOptions): Promise<void> {
    await this.#transactor.run(async (tx: MetaTxn) => {
      const r = await tx.getJson<ScheduleRecord>(keys.schedule(name))
      if (r === undefined || r.lastSlot !== slot) return
      const next: ScheduleRecord = { ...r }
      delete next.runningSince
      if (outcome.snapshotName !== undefined) next.lastSnapshot = outcome.snapshotName
      if (outcome.error !== undefined) next.lastError = outcome.error
      else delete next.lastError
      tx.putJson(keys.schedule(name), next)
    }, options)
  }
}
