import { defineConfig } from 'tsup'

export default defineConfig([
  {
    entry: { index: 'src/index.ts', s3: 'src/s3.ts', etcd: 'src/etcd.ts', conformance: 'test/conformance/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: false,
    target: 'node20',
    external: ['@aws-sdk/client-s3', 'etcd3', 'vitest'],
  },
  {
    entry: { 'cli/vecsnap': 'src/cli/vecsnap.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    external: ['@aws-sdk/client-s3', 'etcd3', 'vitest'],
  },
])
