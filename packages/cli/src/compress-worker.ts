import { parentPort } from 'node:worker_threads';
import { nodeCompressor } from '@q/qcow2/node';
import type { ClusterCompressor } from '@q/qcow2';
import type { CompressRequest, CompressReply } from './compress-pool.js';

/**
 * A compression worker (compress-pool.ts): compresses the clusters it is sent and hands the buffers back. Runs on
 * its own thread, so qemu-img's single compressing core becomes as many as the machine has.
 */
const compressors = new Map<string, ClusterCompressor>();

parentPort!.on('message', (request: CompressRequest) => {
  let reply: CompressReply;
  try {
    let compressor = compressors.get(request.type);
    if (compressor === undefined) compressors.set(request.type, (compressor = nodeCompressor(request.type)));
    const source = new Uint8Array(request.buffer);
    const lengths = new Int32Array(request.clusters.length);
    const pieces: Uint8Array[] = [];
    let total = 0;
    request.clusters.forEach((cluster, i) => {
      const compressed = compressor.compress(source.subarray(cluster * request.clusterSize, (cluster + 1) * request.clusterSize));
      lengths[i] = compressed === undefined ? -1 : compressed.length;
      if (compressed !== undefined) {
        pieces.push(compressed);
        total += compressed.length;
      }
    });
    const out = new Uint8Array(total);
    let at = 0;
    for (const piece of pieces) {
      out.set(piece, at);
      at += piece.length;
    }
    reply = { id: request.id, buffer: request.buffer, out: out.buffer, lengths };
  } catch (error) {
    reply = { id: request.id, buffer: request.buffer, error: (error as Error).message };
  }
  const transfer = [reply.buffer, ...(reply.out === undefined ? [] : [reply.out])];
  parentPort!.postMessage(reply, transfer);
});
