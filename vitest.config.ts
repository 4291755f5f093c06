import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Every in-process MetaStore rejects batches over the SPEC 11 limits (64 operations, 64 expectations, 256 KiB).
    setupFiles: ['test/setup/batch-limits.ts'],
  },
})
