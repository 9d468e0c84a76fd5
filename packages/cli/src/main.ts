import { amendHelp, amendUsage } from './commands/amend-help.js';
import { benchHelp, benchUsage } from './commands/bench-help.js';
import { bitmapHelp, bitmapUsage } from './commands/bitmap-help.js';
import { checkHelp, checkUsage } from './commands/check-help.js';
import { commitHelp, commitUsage } from './commands/commit-help.js';
import { compareHelp, compareUsage } from './commands/compare-help.js';
import { convertHelp, convertOptionsHelp, convertUsage } from './commands/convert-help.js';
import { createHelp, createUsage } from './commands/create-help.js';
import { ddHelp, ddUsage } from './commands/dd-help.js';
import { infoHelp, infoUsage } from './commands/info-help.js';
import { ioHelp, ioUsage } from './commands/io-help.js';
import { mapHelp, mapUsage } from './commands/map-help.js';
import { measureHelp, measureUsage } from './commands/measure-help.js';
import { rebaseHelp, rebaseUsage } from './commands/rebase-help.js';
import { resizeHelp, resizeUsage } from './commands/resize-help.js';
import { serveHelp, serveUsage } from './commands/serve-help.js';
import { snapshotHelp, snapshotUsage } from './commands/snapshot-help.js';
import { describeError } from './describe-error.js';
import { copying } from './tier-up-budget.js';
import { ExitError, HelpRequest, UsageError } from './usage-error.js';
import { OptionError, qemuImgWords } from './getopt.js';
import { writeErr, writeOut } from './process-output.js';

interface Command {
  run(args: string[]): Promise<number>;
  usage: string;
  /**
   * More than the usage line, for `qcow COMMAND --help`, `-h` and `qcow help COMMAND`: what the command does, then a
   * line per option. A function where the text is made from code that is loaded only for it (io's command table).
   */
  help?: string | (() => Promise<string>);
  /** Exit code when the command cannot run (qemu-img compare uses 2, the others 1). */
  errorExitCode: number;
}

/*
 * Each command's implementation is imported when that command runs, not at start: a process pays only for the
 * modules (and Node builtins: tls, net, worker_threads...) of the one command it runs, which is most of `qcow
 * info`'s time otherwise. The usage lines and help stay here, so `qcow`, `qcow help` and `--help` load nothing.
 */
/** A command whose implementation `load` imports when it runs (a literal import() each, where the bundle splits). */
function lazy(load: () => Promise<(args: string[]) => Promise<number>>, usage: string, help: Command['help'], errorExitCode = 1): Command {
  return { run: async (args) => (await load())(args), usage, help, errorExitCode };
}

const COMMANDS: Record<string, Command> = {
  info: lazy(async () => (await import('./commands/info.js')).infoCommand, infoUsage, infoHelp),
  convert: {
    run: async (args) => convertOptionsHelp(args) ?? (await copying(() => import('./commands/convert.js'))()).convertCommand(args),
    usage: convertUsage,
    help: convertHelp,
    errorExitCode: 1,
  },
  create: lazy(async () => (await import('./commands/create.js')).createCommand, createUsage, createHelp),
  map: lazy(async () => (await import('./commands/map.js')).mapCommand, mapUsage, mapHelp),
  compare: lazy(async () => (await copying(() => import('./commands/compare.js'))()).compareCommand, compareUsage, compareHelp, 2),
  io: lazy(async () => (await import('./commands/io.js')).ioCommand, ioUsage, ioHelp),
  check: lazy(async () => (await import('./commands/check.js')).checkCommand, checkUsage, checkHelp),
  bench: lazy(async () => (await import('./commands/bench.js')).benchCommand, benchUsage, benchHelp),
  snapshot: lazy(async () => (await import('./commands/snapshot.js')).snapshotCommand, snapshotUsage, snapshotHelp),
  bitmap: lazy(async () => (await import('./commands/bitmap.js')).bitmapCommand, bitmapUsage, bitmapHelp),
  serve: lazy(async () => (await import('./commands/serve.js')).serveCommand, serveUsage, serveHelp),
  dd: lazy(async () => (await copying(() => import('./commands/dd.js'))()).ddCommand, ddUsage, ddHelp),
  rebase: lazy(async () => (await copying(() => import('./commands/rebase.js'))()).rebaseCommand, rebaseUsage, rebaseHelp),
  commit: lazy(async () => (await copying(() => import('./commands/commit.js'))()).commitCommand, commitUsage, commitHelp),
  resize: lazy(async () => (await import('./commands/resize.js')).resizeCommand, resizeUsage, resizeHelp),
  amend: lazy(async () => (await import('./commands/amend.js')).amendCommand, amendUsage, amendHelp),
  measure: lazy(async () => (await import('./commands/measure.js')).measureCommand, measureUsage, measureHelp),
};

function usage(): string {
  return [
    'usage: qcow COMMAND [ARGS]',
    '',
    'Commands:',
    ...Object.values(COMMANDS).map((c) => `  qcow ${c.usage}`),
    '',
    "Run 'qcow help COMMAND' or 'qcow COMMAND --help' for a command's options.",
    '',
  ].join('\n');
}

async function commandHelp(command: Command): Promise<string> {
  const help = typeof command.help === 'function' ? await command.help() : command.help;
  return `usage: qcow ${command.usage}\n${help === undefined ? '' : `\n${help}\n`}`;
}

/**
 * Runs one `qcow` command line and returns the exit code. Every failure ends here as one line on stderr: bad input
 * and I/O errors name the file; an unexpected exception says "internal error" (with the stack only under
 * QCOW_DEBUG=1).
 */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === 'help' && args[0] !== undefined) {
    const command = COMMANDS[args[0]];
    if (command === undefined) return commandNotFound(args[0]);
    writeOut(await commandHelp(command));
    return 0;
  }
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    writeOut(usage());
    return name === undefined ? 1 : 0;
  }
  if (name === '-V' || name === '--version') {
    writeOut('qcow version 0.1.0 (qemu-img compatible)\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) return commandNotFound(name);
  try {
    return await command.run(args);
  } catch (error) {
    // Thrown by getopt before the command has opened or printed anything.
    if (error instanceof HelpRequest) {
      writeOut(await commandHelp(command));
      return 0;
    }
    if (error instanceof ExitError) {
      writeErr(`qcow: ${error.message}\n`);
      return error.exitCode ?? command.errorExitCode;
    }
    // qemu-img's two lines for a command line it cannot use, an option it cannot parse in its own words (exit 1,
    // compare too); io and serve keep glibc's words and a usage line, as qemu-io and qemu-nbd print them.
    if (error instanceof UsageError && name !== 'io' && name !== 'serve') {
      writeErr(`qcow: ${error instanceof OptionError ? qemuImgWords(error) : error.message}\nTry 'qcow --help' for more information\n`);
      return 1;
    }
    if (error instanceof UsageError) {
      writeErr(`qcow: ${error.message}\nusage: qcow ${command.usage}\n`);
      return command.errorExitCode;
    }
    writeErr(`qcow: ${describeError(error)}\n`);
    if (process.env['QCOW_DEBUG'] === '1' && error instanceof Error) writeErr(`${error.stack}\n`);
    return command.errorExitCode;
  }
}

function commandNotFound(name: string): number {
  writeErr(`qcow: Command not found: ${name}\nTry 'qcow --help' for more information.\n`);
  return 1;
}
