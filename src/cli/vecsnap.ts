/**
 * The `vecsnap` command line: operate snapshots, restore jobs and GC over a data
 * directory (`--data <dir>`) or an S3 bucket (`--s3-endpoint --bucket --meta`).
 * Run `vecsnap --help`; the README's CLI section lists every command and exit code.
 */
import { run } from './program.js'

process.exitCode = await run(process.argv)
