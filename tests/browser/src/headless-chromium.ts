import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { CdpPipe, type CdpEvent } from './cdp-pipe.js';

/** A headless Chromium this test started, driven over the DevTools pipe. */
export interface HeadlessChromium {
  readonly pid: number;
  /** chromium's own name and version (`Browser.getVersion`), for the test's log. */
  readonly product: string;
  /** Opens `url` in a new tab and waits for its load event. */
  openPage(url: string): Promise<ChromiumPage>;
  /** Closes the browser (Browser.close, then SIGKILL to its process group after 5 s) and removes its profile. */
  close(): Promise<void>;
}

export interface ChromiumPage {
  /**
   * Evaluates `expression` in the page, awaits the promise it gives and returns its value (JSON). An exception
   * or a rejection in the page throws here with the page's own message and stack; past `timeoutMs` it throws
   * with what the page logged so far.
   */
  evaluate(expression: string, timeoutMs: number): Promise<unknown>;
}

const STARTUP_MS = 30_000;

/**
 * Starts Debian's chromium headless. As root it needs `--no-sandbox` (its sandbox refuses to run as root); the
 * profile is a fresh temporary directory, so nothing from another run or user leaks in. It starts in its own
 * process group (`detached`), so its helpers (zygote, renderer, GPU and network services) are stopped with it
 * by this group's id even if the browser process dies first. A missing chromium is an error, never a skip.
 */
export async function launchChromium(): Promise<HeadlessChromium> {
  const binary = findChromium();
  const profile = mkdtempSync(join(tmpdir(), 'q-chromium-'));
  const args = [
    '--headless=new',
    '--no-sandbox',
    `--user-data-dir=${profile}`,
    '--remote-debugging-pipe',
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-component-update',
    '--disable-sync',
    'about:blank',
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-8192)));
  const stderrTail = (): string => stderr.trim().split('\n').slice(-6).join(' | ');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pipe = new CdpPipe(child.stdio[3] as Writable, child.stdio[4] as Readable, () => `chromium closed its DevTools pipe (exited or crashed): ${stderrTail()}`);
  child.once('error', (error) => pipe.fail(new Error(`chromium (${binary}) could not be started: ${error.message}`)));
  child.once('exit', (code, signal) => pipe.fail(new Error(`chromium exited (${signal ?? `code ${code}`}): ${stderrTail()}`)));
  const killGroup = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  process.once('exit', killGroup);

  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      // Armed first: a hung browser may never answer Browser.close.
      const timer = setTimeout(killGroup, 5000);
      await pipe.send('Browser.close').catch(() => undefined);
      await exited;
      clearTimeout(timer);
    }
    // Helpers that outlived the browser process (the group's id stays ours while any of them lives).
    killGroup();
    process.removeListener('exit', killGroup);
    rmSync(profile, { recursive: true, force: true });
  };

  try {
    const version = await withDeadline(pipe.send('Browser.getVersion'), STARTUP_MS, () => `chromium did not answer within ${STARTUP_MS} ms: ${stderrTail()}`);
    return {
      pid: child.pid!,
      product: String(version['product']),
      openPage: (url) => openPage(pipe, url),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function openPage(pipe: CdpPipe, url: string): Promise<ChromiumPage> {
  const { targetId } = await pipe.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = (await pipe.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
  // What the page says (console, uncaught errors, failed loads), kept to explain a timeout.
  const said: string[] = [];
  pipe.on((event) => event.sessionId === sessionId && noteEvent(event, said));
  for (const domain of ['Runtime', 'Page', 'Log']) await pipe.send(`${domain}.enable`, {}, sessionId);
  const loaded = pipe.next('Page.loadEventFired', sessionId);
  const navigated = await pipe.send('Page.navigate', { url }, sessionId);
  if (typeof navigated['errorText'] === 'string') throw new Error(`chromium could not load ${url}: ${navigated['errorText']}`);
  await withDeadline(loaded, STARTUP_MS, () => `${url} did not finish loading within ${STARTUP_MS} ms; the page said: ${said.join(' | ')}`);
  return {
    evaluate: async (expression, timeoutMs) => {
      const evaluated = pipe.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
      const answer = await withDeadline(evaluated, timeoutMs, () => `the page did not finish within ${timeoutMs} ms; it said: ${said.join(' | ') || 'nothing'}`);
      const thrown = answer['exceptionDetails'] as ExceptionDetails | undefined;
      if (thrown !== undefined) throw new Error(`in the page: ${describeException(thrown)}`);
      return (answer['result'] as { value?: unknown }).value;
    },
  };
}

interface ExceptionDetails {
  text: string;
  exception?: { description?: string; value?: unknown };
}

/** An Error's stack as the page printed it (`Error: message\n    at ...`), else whatever was thrown. */
function describeException(details: ExceptionDetails): string {
  return details.exception?.description ?? (details.exception?.value === undefined ? details.text : JSON.stringify(details.exception.value));
}

function noteEvent(event: CdpEvent, said: string[]): void {
  const params = event.params;
  if (event.method === 'Runtime.consoleAPICalled') {
    const args = params['args'] as { value?: unknown; description?: string }[];
    said.push(`console.${String(params['type'])}: ${args.map((arg) => arg.description ?? String(arg.value)).join(' ')}`);
  } else if (event.method === 'Runtime.exceptionThrown') {
    said.push(`uncaught: ${describeException(params['exceptionDetails'] as ExceptionDetails)}`);
  } else if (event.method === 'Log.entryAdded') {
    const entry = params['entry'] as { level: string; text: string; url?: string };
    said.push(`${entry.level}: ${entry.text}${entry.url === undefined ? '' : ` (${entry.url})`}`);
  }
  // The latest say most about a hang; a chatty page must not grow this without bound.
  if (said.length > 20) said.splice(0, said.length - 20);
}

/** `promise`, or an Error saying `why()` once `ms` have passed. */
async function withDeadline<T>(promise: Promise<T>, ms: number, why: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(why())), ms)));
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function findChromium(): string {
  const found = spawnSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' });
  if (found.status !== 0) {
    throw new Error('chromium is not installed (apt-get install chromium; .ci/run installs it): the browser build is tested in a real browser');
  }
  return found.stdout.trim();
}
