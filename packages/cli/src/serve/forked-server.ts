import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ExitError } from '../usage-error.js';

/** Set in the environment of the background server `--fork` starts, so it reports instead of forking again. */
const FORKED_ENV = 'QCOW_SERVE_FORKED';

/** What the background server tells the command that started it, once: listening, or why it could not. */
type ForkReport = { kind: 'listening' } | { kind: 'failed'; message: string };

/** The background server's side of `--fork`: tell the starting command how starting went, then let it go. */
export interface ForkChannel {
  listening(): Promise<void>;
  failed(message: string): Promise<void>;
}

/**
 * `--fork` as qemu-nbd does it: run the server in a detached process (its own session, no terminal, stdio on
 * /dev/null, so `$(qcow serve --fork ...)` returns) and exit 0 once it listens, or exit 1 with its error line when
 * it cannot open the image or listen. The same `qcow serve` arguments run in the child; the parent only waits.
 */
export async function serveInBackground(args: readonly string[]): Promise<number> {
  // The `qcow` bin, ../bin from this bundle (dist/qcow.cjs, dist/index.js), whoever imported it.
  const cli = fileURLToPath(new URL('../bin/qcow.cjs', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, cli, 'serve', ...args], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    env: { ...process.env, [FORKED_ENV]: '1' },
  });
  const report = await new Promise<ForkReport>((resolve) => {
    child.once('message', (message) => resolve(message as ForkReport));
    child.once('error', (error) => resolve({ kind: 'failed', message: `Failed to start the server: ${error.message}` }));
    child.once('exit', (code, signal) => {
      resolve({ kind: 'failed', message: `The server exited before listening (${signal ?? `exit code ${code ?? '?'}`})` });
    });
  });
  child.removeAllListeners();
  if (child.connected) child.disconnect();
  child.unref();
  if (report.kind === 'failed') throw new ExitError(report.message, 1);
  return 0;
}

/** The channel to the command that started this process with `--fork`, or undefined when it was not. */
export function forkChannel(): ForkChannel | undefined {
  if (process.env[FORKED_ENV] !== '1' || process.send === undefined) return undefined;
  // Not for anything this server starts in turn.
  delete process.env[FORKED_ENV];
  const send = (report: ForkReport): Promise<void> =>
    new Promise((resolve) => {
      // Once reported, the channel goes: nothing then ties this server to the command that started it.
      process.send?.(report, undefined, {}, () => {
        process.disconnect?.();
        resolve();
      });
    });
  return {
    listening: () => send({ kind: 'listening' }),
    failed: (message) => send({ kind: 'failed', message }),
  };
}
