import type { Upload } from '@aws-sdk/lib-storage'

/** The `Upload` class of `@aws-sdk/lib-storage`. */
export type UploadClass = typeof Upload

let loading: Promise<UploadClass | undefined> | undefined

/**
 * Loads `@aws-sdk/lib-storage` (an optional peer) on first use; resolves its `Upload`, or
 * `undefined` when the package is not installed (the store then streams without multipart
 * uploads). Other failures to load it reject.
 * @internal
 */
export function loadUpload(): Promise<UploadClass | undefined> {
  loading ??= import('@aws-sdk/lib-storage').then(
    (m) => m.Upload,
    (err: unknown) => {
      const code = (err as { code?: string } | undefined)?.code
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return undefined
      loading = undefined
      throw err
    },
  )
  return loading
}
