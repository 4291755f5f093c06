import fc from 'fast-check'
import { describe, it } from 'vitest'
import { commandArbitraries, dropEverythingAndCollect, prelude } from './commands.js'
import { Model, Real } from './harness.js'

/**
 * Whole-system model-based test of snapshot-aware GC: random sequences of catalog
 * mutations (collections, segments with real files of every class, deletes, index
 * builds and drops, compaction, drops), snapshots, restores, GC passes with zero grace,
 * reopens and crashes at the N-th write, checked after every step against a simple
 * model (see harness.ts): no committed snapshot loses a file or a byte, no live file is
 * deleted, a GC pass leaves nothing unreferenced, and a restore equals what its snapshot
 * captured. Every sequence ends by dropping everything: then GC must leave `files/` empty.
 *
 * `npm test` runs a fast profile; `npm run test:long` (VECSNAP_LONG=1) runs 10,000
 * sequences. A failing run prints `{ seed, path }`: pin it in `REGRESSIONS` below.
 */

const LONG = process.env.VECSNAP_LONG === '1'
const NUM_RUNS = LONG ? Number(process.env.VECSNAP_RUNS ?? 10_000) : 12
const MAX_COMMANDS = LONG ? 30 : 25

/** Failing cases found so far, replayed on every run (`fc.assert` seed and path). */
const REGRESSIONS: { name: string; seed: number; path: string }[] = []

let runs = 0
const started = Date.now()

function property(): fc.IAsyncPropertyWithHooks<[Iterable<fc.AsyncCommand<Model, Real, false>>]> {
  return fc.asyncProperty(fc.commands(commandArbitraries(), { maxCommands: MAX_COMMANDS, size: 'max' }), async (cmds) => {
    if (LONG && ++runs % 250 === 0) process.stderr.write(`gc lifecycle: ${runs} sequences in ${Math.round((Date.now() - started) / 1000)} s\n`)
    const real = await Real.create()
    try {
      const model = new Model()
      for (const step of prelude()) await step.run(model, real)
      await fc.asyncModelRun(() => ({ model, real }), cmds)
      real.plan.disarm()
      await dropEverythingAndCollect(model, real)
    } finally {
      await real.dispose()
    }
  })
}

describe('GC lifecycle property', () => {
  it(
    `no sequence of operations loses a snapshot's file or leaks one (${NUM_RUNS} runs)`,
    async () => {
      await fc.assert(property(), { numRuns: NUM_RUNS, interruptAfterTimeLimit: LONG ? undefined : 45_000, markInterruptAsFailure: false })
    },
    LONG ? 0 : 60_000,
  )

  for (const r of REGRESSIONS) {
    it(`regression: ${r.name}`, async () => {
      await fc.assert(property(), { seed: r.seed, path: r.path, endOnFailure: true })
    }, 60_000)
  }
})
