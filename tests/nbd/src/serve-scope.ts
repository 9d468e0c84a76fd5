import { afterEach, beforeEach } from 'vitest';
import { scratch, type Scratch } from '@q/test-support';
import { startServe, type ServeProcess } from './nbd-server.js';

/** Per-test scratch directory and `qcow serve` processes, all cleaned up after each test. */
export interface ServeScope {
  /** This test's scratch directory (a fresh one per test). */
  readonly dir: Scratch;
  /** Starts `qcow serve ARGS` on a Unix socket in `dir` (default) or a free TCP port; stopped after the test. */
  serve(args: readonly string[], where?: 'tcp' | 'unix'): Promise<ServeProcess>;
}

/**
 * Registers the hooks of a test file that serves images: call it once at the top of the file. Stopping a server
 * twice is harmless, so tests may stop theirs early (to check the image) and leave the rest to the hook.
 */
export function serveScope(prefix = 'qcow-nbd-'): ServeScope {
  let current: Scratch | undefined;
  let servers: ServeProcess[] = [];
  beforeEach(() => {
    current = scratch(prefix);
  });
  afterEach(async () => {
    for (const server of servers) await server.stop();
    servers = [];
    current?.cleanup();
    current = undefined;
  });
  const dir = (): Scratch => {
    if (current === undefined) throw new Error('serveScope: only inside a test');
    return current;
  };
  return {
    get dir() {
      return dir();
    },
    serve: async (args, where = 'unix') => {
      const server = await startServe(args, where === 'tcp' ? 'tcp' : { socket: dir().path(`nbd-${servers.length}.sock`) });
      servers.push(server);
      return server;
    },
  };
}
