import { defineConfig } from 'tsup'

export default defineConfig([
  {
    entry: { index: 'src/index.ts', s3: 'src/s3.ts', etcd: 'src/etcd.ts', conformance: 'test/conformance/index.ts' },
    format: ['esm', 'cjs'],
    // Code shared by the entries (SnapshotError above all) goes into chunks that every entry
    // loads, in both formats: without this the CJS entries would each carry their own copy.
    splitting: true,
    dts: true,
    sourcemap: true,
    clean: false,
    target: 'node20',
    external: ['@aws-sdk/client-s3', 'etcd3', 'vitest'],
  },
  {
    // The CLI is a program with its own copy of the code; its chunks stay next to it in dist/cli.
    entry: { vecsnap: 'src/cli/vecsnap.ts' },
    outDir: 'dist/cli',
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    external: ['@aws-sdk/client-s3', 'etcd3', 'vitest'],
  },
])
