import { afterAll, beforeAll } from 'vitest';
import { requireTool, scratch, type Scratch } from '@q/test-support';
import { guestImage, type GuestImage } from './guest/guest-image.js';
import { startServe, type ServeProcess } from './host/serve-process.js';

/** What a VM test file works with, ready once its beforeAll has run. */
export interface VmSuite {
  readonly dir: Scratch;
  readonly guest: GuestImage;
  /** Starts `qcow serve` on a Unix socket in `dir`; the suite kills it at the end whatever happens. */
  serve(socketName: string, args: readonly string[]): Promise<ServeProcess>;
}

/**
 * Registers a VM test file's set-up and tear-down: the host tools checked (a missing one fails loudly), a scratch
 * directory, the guest built (or taken from its cache), and every server started through `serve` killed after.
 */
export function vmSuite(prefix: string): VmSuite {
  let dir: Scratch | undefined;
  let guest: GuestImage | undefined;
  const servers: ServeProcess[] = [];
  beforeAll(() => {
    for (const tool of ['mke2fs', 'e2fsck', 'debugfs', 'qemu-img']) requireTool(tool);
    dir = scratch(prefix);
    guest = guestImage();
  });
  afterAll(async () => {
    for (const server of servers) await server.kill();
    dir?.cleanup();
  });
  return {
    get dir() {
      return dir!;
    },
    get guest() {
      return guest!;
    },
    async serve(socketName, args) {
      const server = await startServe(dir!.path(socketName), args);
      servers.push(server);
      return server;
    },
  };
}
