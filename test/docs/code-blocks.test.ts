import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

/**
 * Every ```ts code block in the README and in docs/ is compiled against the source (the
 * package's entry points map to `src/`), so the examples cannot drift from the API. Blocks
 * are modules of their own; the names the prose takes as given (`manager`, `catalog`,
 * `meta`, `objects`, …) are declared once in an ambient prelude, and a block that defines
 * one shadows it. A block that is not meant to compile (a signature sketch) is fenced as
 * `text` instead.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

const PRELUDE = `
declare const manager: import('vecsnap').SnapshotManager
declare const catalog: import('vecsnap').Catalog
declare const meta: import('vecsnap').MetaStore
declare const objects: import('vecsnap').ObjectStore
declare const collection: import('vecsnap').CollectionInfo
declare const docs: import('vecsnap').CollectionInfo
declare const segment: import('vecsnap').SegmentInfo
declare const a: import('vecsnap').SegmentInfo
declare const b: import('vecsnap').SegmentInfo
declare const binlogs: import('vecsnap').FieldBinlog[]
declare const jobId: number
declare const signal: AbortSignal
// Types the reference listings name without importing them.
type AbortOptions = import('vecsnap').AbortOptions
type MetaOperation = import('vecsnap').MetaOperation
type MetaBatchOptions = import('vecsnap').MetaBatchOptions
type MetaRange = import('vecsnap').MetaRange
type LoopLeadership = import('vecsnap').LoopLeadership
type PutOptions = import('vecsnap').PutOptions
type ObjectInfo = import('vecsnap').ObjectInfo
type CopyOptions = import('vecsnap').CopyOptions
type FieldSchema = import('vecsnap').FieldSchema
`

/** The reader's own modules that examples import, as declarations. */
const STUBS: Record<string, string> = {
  'node.d.ts': `export declare function openManager(): Promise<import('vecsnap').SnapshotManager>\n`,
  'map-meta-store.d.ts': `export declare class MapMetaStore implements import('vecsnap').MetaStore {\n  constructor(options?: unknown)\n  readonly capabilities: import('vecsnap').MetaStoreCapabilities\n  readonly status: import('vecsnap').StoreStatus\n  open(): Promise<void>\n  close(): Promise<void>\n  get(key: string): Promise<string | undefined>\n  batch(operations: readonly import('vecsnap').MetaOperation[], options?: import('vecsnap').MetaBatchOptions): Promise<void>\n  iterate(range?: import('vecsnap').MetaRange): AsyncIterable<[string, string]>\n}\n`,
  'memory-object-store.d.ts': `export declare class MemoryObjectStore implements import('vecsnap').ObjectStore {\n  readonly capabilities: import('vecsnap').ObjectStoreCapabilities\n  put(key: string, body: Uint8Array): Promise<import('vecsnap').ObjectInfo>\n  get(key: string): Promise<Uint8Array | undefined>\n  head(key: string): Promise<import('vecsnap').ObjectInfo | undefined>\n  list(prefix: string): AsyncIterable<import('vecsnap').ObjectInfo>\n  copy(from: string, to: string): Promise<import('vecsnap').ObjectInfo>\n  delete(keys: readonly string[]): Promise<void>\n}\n`,
}

interface Block {
  file: string
  line: number
  code: string
}

async function docFiles(): Promise<string[]> {
  const docs = await readdir(join(root, 'docs'), { recursive: true }).catch(() => [] as string[])
  return [join(root, 'README.md'), ...docs.filter((f) => f.endsWith('.md') && !f.startsWith('api')).map((f) => join(root, 'docs', f))]
}

function blocksOf(file: string, text: string): Block[] {
  const out: Block[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i])) continue
    const start = i + 1
    let end = start
    while (end < lines.length && !lines[end].startsWith('```')) end++
    out.push({ file, line: start, code: lines.slice(start, end).join('\n') })
    i = end
  }
  return out
}

describe('code blocks in the README and docs/', () => {
  it('compile against the API', async () => {
    const blocks: Block[] = []
    for (const file of await docFiles()) blocks.push(...blocksOf(file, await readFile(file, 'utf8')))
    expect(blocks.length).toBeGreaterThan(0)
    const dir = await mkdtemp(join(root, '.tmp-doc-blocks-'))
    try {
      const names: string[] = [join(dir, 'prelude.d.ts')]
      await writeFile(names[0], PRELUDE)
      for (const [name, text] of Object.entries(STUBS)) await writeFile(join(dir, name), text)
      const where = new Map<string, Block>()
      for (const [i, b] of blocks.entries()) {
        const name = join(dir, `block-${i}.ts`)
        // A module of its own, whatever the block contains.
        await writeFile(name, `${b.code}\nexport {}\n`)
        names.push(name)
        where.set(name, b)
      }
      const program = ts.createProgram(names, {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        baseUrl: root,
        paths: {
          vecsnap: ['src/index.ts'],
          'vecsnap/s3': ['src/s3.ts'],
          'vecsnap/etcd': ['src/etcd.ts'],
          'vecsnap/conformance': ['test/conformance/index.ts'],
        },
      })
      const problems = ts
        .getPreEmitDiagnostics(program)
        .filter((d) => d.file !== undefined && where.has(resolve(d.file.fileName)))
        .map((d) => {
          const b = where.get(resolve((d.file as ts.SourceFile).fileName)) as Block
          const { line } = (d.file as ts.SourceFile).getLineAndCharacterOfPosition(d.start ?? 0)
          return `${relative(root, b.file)}:${b.line + line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
        })
      expect(problems).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
