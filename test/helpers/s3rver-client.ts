import { S3Client } from '@aws-sdk/client-s3'

/**
 * An S3 client for an s3rver at `endpoint` (127.0.0.1): its fixed credentials, path-style
 * addressing, and checksums only where an operation needs them (s3rver does not check the
 * SDK's default CRC32 trailers). Used by `startS3rver` and by child processes.
 */
export function s3rverClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
}
