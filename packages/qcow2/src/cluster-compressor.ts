/**
 * A compressor for one compression type, injected like the decompressors (codecs.ts) so the engine stays free of
 * Node-only code: `compress` turns one whole cluster into one zlib stream (raw deflate, window of at most 4 KiB,
 * the spec's limit) or one zstd frame, or returns undefined when the result would not be stored (worthCompressing).
 * Node's are `nodeCompressor` in `@q/qcow2/node`.
 */
export interface ClusterCompressor {
  compress(cluster: Uint8Array): Uint8Array | undefined;
}

/**
 * Whether `compressedBytes` of compressed data are worth storing for one cluster. qemu-img convert -c stores a
 * cluster compressed only when that leaves at least two bytes of the cluster unused: observed with qemu-img 7.2 on
 * clusters whose raw deflate output was cluster_size - 2 (stored compressed) and cluster_size - 1 (stored plain),
 * at 4 KiB and 64 KiB clusters. zstd never yields sizes that close (it falls back to raw blocks), so one rule fits
 * both types.
 */
export function worthCompressing(compressedBytes: number, clusterSize: number): boolean {
  return compressedBytes <= clusterSize - 2;
}
