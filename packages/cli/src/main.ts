import { benchCommand, benchHelp, benchUsage } from './commands/bench.js';
import { checkCommand, checkHelp, checkUsage } from './commands/check.js';
import { compareCommand, compareHelp, compareUsage } from './commands/compare.js';
import { convertCommand, convertUsage } from './commands/convert.js';
import { convertHelp, convertOptionsHelp } from './commands/convert-help.js';
import { createCommand, createHelp, createUsage } from './commands/create.js';
import { ddCommand, ddHelp, ddUsage } from './commands/dd.js';
import { infoCommand, infoHelp, infoUsage } from './commands/info.js';
import { ioCommand, ioHelp, ioUsage } from './commands/io.js';
import { mapCommand, mapHelp, mapUsage } from './commands/map.js';
import { rebaseCommand, rebaseHelp, rebaseUsage } from './commands/rebase.js';
import { commitCommand, commitHelp, commitUsage } from './commands/commit.js';
import { amendCommand, amendHelp, amendUsage } from './commands/amend.js';
import { measureCommand, measureHelp, measureUsage } from './commands/measure.js';
import { resizeCommand, resizeHelp, resizeUsage } from './commands/resize.js';
import { serveCommand, serveHelp, serveUsage } from './commands/serve.js';
import { snapshotCommand, snapshotHelp, snapshotUsage } from './commands/snapshot.js';
import { describeError } from './describe-error.js';
import { ExitError, HelpRequest, UsageError } from './usage-error.js';

interface Command {
  run(args: string[]): Promise<number>;
  usage: string;
  /**
   * More than the usage line, for `qcow COMMAND --help`, `-h` and `qcow help COMMAND`: what the command does, then a
   * line per option.
   */
  help?: string;
  /** Exit code when the command cannot run (qemu-img compare uses 2, the others 1). */
  errorExitCode: number;
}

const COMMANDS: Record<string, Command> = {
  info: { run: infoCommand, usage: infoUsage, help: infoHelp, errorExitCode: 1 },
  convert: { run: async (args) => convertOptionsHelp(args) ?? convertCommand(args), usage: convertUsage, help: convertHelp, errorExitCode: 1 },
  create: { run: createCommand, usage: createUsage, help: createHelp, errorExitCode: 1 },
  map: { run: mapCommand, usage: mapUsage, help: mapHelp, errorExitCode: 1 },
  compare: { run: compareCommand, usage: compareUsage, help: compareHelp, errorExitCode: 2 },
  io: { run: ioCommand, usage: ioUsage, help: ioHelp, errorExitCode: 1 },
  check: { run: checkCommand, usage: checkUsage, help: checkHelp, errorExitCode: 1 },
  bench: { run: benchCommand, usage: benchUsage, help: benchHelp, errorExitCode: 1 },
  snapshot: { run: snapshotCommand, usage: snapshotUsage, help: snapshotHelp, errorExitCode: 1 },
  serve: { run: serveCommand, usage: serveUsage, help: serveHelp, errorExitCode: 1 },
  dd: { run: ddCommand, usage: ddUsage, help: ddHelp, errorExitCode: 1 },
  rebase: { run: rebaseCommand, usage: rebaseUsage, help: rebaseHelp, errorExitCode: 1 },
  commit: { run: commitCommand, usage: commitUsage, help: commitHelp, errorExitCode: 1 },
  resize: { run: resizeCommand, usage: resizeUsage, help: resizeHelp, errorExitCode: 1 },
  amend: { run: amendCommand, usage: amendUsage, help: amendHelp, errorExitCode: 1 },
  measure: { run: measureCommand, usage: measureUsage, help: measureHelp, errorExitCode: 1 },
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

function commandHelp(command: Command): string {
  return `usage: qcow ${command.usage}\n${command.help === undefined ? '' : `\n${command.help}\n`}`;
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
    process.stdout.write(commandHelp(command));
    return 0;
  }
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 1 : 0;
  }
  if (name === '-V' || name === '--version') {
    process.stdout.write('qcow version 0.1.0 (qemu-img compatible)\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) return commandNotFound(name);
  try {
    return await command.run(args);
  } catch (error) {
    // Thrown by getopt before the command has opened or printed anything.
    if (error instanceof HelpRequest) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    if (error instanceof ExitError) {
      process.stderr.write(`qcow: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`qcow: ${error.message}\nusage: qcow ${command.usage}\n`);
      return command.errorExitCode;
    }
    process.stderr.write(`qcow: ${describeError(error)}\n`);
    if (process.env['QCOW_DEBUG'] === '1' && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return command.errorExitCode;
  }
}

function commandNotFound(name: string): number {
  process.stderr.write(`qcow: Command not found: ${name}\nTry 'qcow --help' for more information.\n`);
  return 1;
}
