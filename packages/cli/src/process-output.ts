import { writeSync } from 'node:fs';

/**
 * Where a command's text goes: stdout or stderr, written straight to the descriptor while the process is `qcow`
 * itself and nothing has made Node's stream for it, through the stream otherwise. Node makes `process.stdout` on
 * first use, and for a file or a pipe that loads the stream modules (2-4 ms of a `qcow info` that prints 300 bytes);
 * a blocking write(2) is what qemu-img does, and what Node's stream does for a file anyway.
 */
interface Sink {
  readonly fd: 1 | 2;
  /** Whether to write to `fd` directly (run() turns it on; the stream's first use turns it off for good). */
  direct: boolean;
  stream(): NodeJS.WriteStream;
}

const stdout: Sink = { fd: 1, direct: false, stream: () => process.stdout };
const stderr: Sink = { fd: 2, direct: false, stream: () => process.stderr };

/** Writes `text` to stdout (see Sink). */
export function writeOut(text: string): void {
  write(stdout, text);
}

/** Writes `text` to stderr (see Sink). */
export function writeErr(text: string): void {
  write(stderr, text);
}

/**
 * Makes writeOut and writeErr write to the descriptors until something makes Node's stream for one of them, from
 * then on through the stream, so that what is written keeps its order. For run(), which owns the process; a program
 * that calls `main` itself keeps the streams (and can replace their `write`). `onStdout` is given process.stdout
 * when it is made.
 */
export function writeDirectly(onStdout: (stream: NodeJS.WriteStream) => void): void {
  for (const sink of [stdout, stderr]) {
    const name = sink.fd === 1 ? 'stdout' : 'stderr';
    const descriptor = Object.getOwnPropertyDescriptor(process, name);
    const get = descriptor?.get;
    // A getter that cannot be wrapped: make the stream now and use it.
    if (get === undefined || descriptor?.configurable !== true) {
      if (sink.fd === 1) onStdout(process.stdout);
      continue;
    }
    sink.direct = true;
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: descriptor.enumerable ?? true,
      get() {
        const stream = get.call(process) as NodeJS.WriteStream;
        Object.defineProperty(process, name, { configurable: true, enumerable: descriptor.enumerable ?? true, get });
        sink.direct = false;
        if (sink.fd === 1) onStdout(stream);
        return stream;
      },
    });
  }
}

function write(sink: Sink, text: string): void {
  if (!sink.direct) {
    sink.stream().write(text);
    return;
  }
  const bytes = Buffer.from(text, 'utf8');
  for (let done = 0; done < bytes.length; ) {
    try {
      done += writeSync(sink.fd, bytes, done, bytes.length - done);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A non-blocking pipe that is full (its other end set O_NONBLOCK): the stream waits for it.
      if (code === 'EAGAIN') {
        sink.stream().write(bytes.subarray(done));
        return;
      }
      // The reader went away (`qcow map x | head`): its choice, not an error worth a trace; as the stream does.
      if (code === 'EPIPE') {
        if (sink.fd === 1) process.exit(0);
        return;
      }
      throw error;
    }
  }
}
