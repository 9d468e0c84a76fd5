/*
 * io's usage line and help, apart from the command so that `qcow`, `qcow help` and `--help` print them
 * without loading the command's implementation (main.ts imports commands only when they run). The help lists
 * qemu-io's commands from their table, which holds their code too, so it is imported only for the help itself.
 */

export const ioUsage = 'io [-r] [-f fmt] [-U] [--untrusted] [-c COMMAND]... FILE';

/** `qcow io --help`: the options, then a line per qemu-io command. */
export async function ioHelp(): Promise<string> {
  const { ioCommandLines } = await import('../io/io-commands.js');
  return `Reads and writes an image with qemu-io's commands:
  -c, --cmd COMMAND    run COMMAND (repeatable, in order); without -c, commands are read from standard input,
                       one a line, after a "qemu-io> " prompt
  -r, --read-only      open read-only
  -f FMT               qcow2 or raw (default: probed)
  -U, --force-share    open beside a writer that holds the image (with -r)
  --untrusted          the image comes from someone untrusted (see qcow info --help)
Commands (qemu-io's words, 'help COMMAND' at the prompt for its options):
${ioCommandLines().map((line) => `  ${line}`).join('\n')}
Exit 1 when a command failed (a pattern mismatch included); aio requests count as done once started.`;
}
