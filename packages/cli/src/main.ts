import { amendCommand, amendHelp, amendUsage } from './commands/amend.js';
import { benchCommand, benchUsage } from './commands/bench.js';
import { checkCommand, checkUsage } from './commands/check.js';
import { compareCommand, compareUsage } from './commands/compare.js';
import { convertCommand, convertUsage } from './commands/convert.js';
import { createCommand, createUsage } from './commands/create.js';
import { infoCommand, infoUsage } from './commands/info.js';
import { ioCommand, ioUsage } from './commands/io.js';
import { mapCommand, mapUsage } from './commands/map.js';
import { measureCommand, measureHelp, measureUsage } from './commands/measure.js';
import { resizeCommand, resizeHelp, resizeUsage } from './commands/resize.js';
import { serveCommand, serveHelp, serveUsage } from './commands/serve.js';
import { snapshotCommand, snapshotUsage } from './commands/snapshot.js';
import { describeError } from './describe-error.js';
import { ExitError, UsageError } from './usage-error.js';

interface Command {
  run(args: string[]): Promise<number>;
  usage: string;
  /** More than the usage line, for `qcow COMMAND --help` (each flag, what it does). */
  help?: string;
  /** Exit code when the command cannot run (qemu-img compare uses 2, the others 1). */
  errorExitCode: number;
}

const COMMANDS: Record<string, Command> = {
  info: { run: infoCommand, usage: infoUsage, errorExitCode: 1 },
  convert: { run: convertCommand, usage: convertUsage, errorExitCode: 1 },
  create: { run: createCommand, usage: createUsage, errorExitCode: 1 },
  map: { run: mapCommand, usage: mapUsage, errorExitCode: 1 },
  compare: { run: compareCommand, usage: compareUsage, errorExitCode: 2 },
  io: { run: ioCommand, usage: ioUsage, errorExitCode: 1 },
  check: { run: checkCommand, usage: checkUsage, errorExitCode: 1 },
  bench: { run: benchCommand, usage: benchUsage, errorExitCode: 1 },
  snapshot: { run: snapshotCommand, usage: snapshotUsage, errorExitCode: 1 },
  serve: { run: serveCommand, usage: serveUsage, help: serveHelp, errorExitCode: 1 },
  resize: { run: resizeCommand, usage: resizeUsage, help: resizeHelp, errorExitCode: 1 },
  amend: { run: amendCommand, usage: amendUsage, help: amendHelp, errorExitCode: 1 },
  measure: { run: measureCommand, usage: measureUsage, help: measureHelp, errorExitCode: 1 },
};

function usage(): string {
  return ['usage: qcow COMMAND [ARGS]', '', 'Commands:', ...Object.values(COMMANDS).map((c) => `  qcow ${c.usage}`), ''].join('\n');
}

/**
 * Runs one `qcow` command line and returns the exit code. Every failure ends here as one line on stderr: bad input
 * and I/O errors name the file; an unexpected exception says "internal error" (with the stack only under
 * QCOW_DEBUG=1).
 */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 1 : 0;
  }
  if (name === '-V' || name === '--version') {
    process.stdout.write('qcow version 0.1.0 (qemu-img compatible)\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`qcow: Command not found: ${name}\nTry 'qcow --help' for more information.\n`);
    return 1;
  }
  if (args.includes('--help') || (args.includes('-h') && !args.includes('-c') && name !== 'io')) {
    process.stdout.write(`usage: qcow ${command.usage}\n${command.help === undefined ? '' : `\n${command.help}\n`}`);
    return 0;
  }
  try {
    return await command.run(args);
  } catch (error) {
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
