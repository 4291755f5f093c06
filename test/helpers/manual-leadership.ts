import type { DemotionReason, LeadershipHandlers, LoopLeadership } from '../../src/cluster/leadership.js'

/** A leadership the test elects and demotes by hand; `alive` is what `candidates()` reports. */
export class ManualLeadership implements LoopLeadership {
  readonly alive = new Set<string>()
  handlers: LeadershipHandlers | undefined
  candidateId: string | undefined
  leading = false
  #term = new AbortController()

  async campaign(handlers: LeadershipHandlers, options: { candidateId: string }): Promise<void> {
    this.handlers = handlers
    this.candidateId = options.candidateId
    this.alive.add(options.candidateId)
  }

  async elect(): Promise<void> {
    this.#term = new AbortController()
    await this.handlers!.elected(this.#term.signal)
    this.leading = true
  }

  async demote(reason: DemotionReason): Promise<void> {
    this.#term.abort()
    this.leading = false
    await this.handlers!.demoted(reason)
  }

  async resign(): Promise<void> {
    if (this.leading) await this.demote('resigned')
    if (this.candidateId !== undefined) this.alive.delete(this.candidateId)
    this.handlers = undefined
  }

  async candidates(): Promise<ReadonlySet<string>> {
    return new Set(this.alive)
  }
}
