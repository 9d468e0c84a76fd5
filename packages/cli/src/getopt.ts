import { HelpRequest, UsageError } from './usage-error.js';

export interface OptionSpec {
  /** Short options, getopt style: a letter, followed by ':' when it takes a value ("f:O:cp"). */
  short: string;
  /** Long options: name -> whether it takes a value. */
  long?: Record<string, boolean>;
}

/**
 * A command line getopt cannot parse. The message is glibc's (what qemu-io and qemu-nbd print); `kind` and `token`
 * (the argument as written: "-Z", "--foo=bar", "-O" without its value) give qemu-img's words (qemuImgWords).
 */
export class OptionError extends UsageError {
  constructor(
    message: string,
    readonly kind: 'unknown' | 'missing-value',
    readonly token: string,
  ) {
    super(message);
  }
}

/** qemu-img's line for an OptionError: it names the argument as written, whatever was wrong with it. */
export function qemuImgWords(error: OptionError): string {
  return error.kind === 'unknown' ? `unrecognized option '${error.token}'` : `missing argument for option '${error.token}'`;
}

export interface ParsedArgs {
  /** Options in command-line order (a repeated option appears as often as given). */
  options: Array<{ name: string; value: string | undefined }>;
  operands: string[];
}

/**
 * Parses arguments the way GNU getopt_long does for qemu-img: grouped short flags (`-pU`), attached or separate
 * values (`-fraw`, `-f raw`), `--name=value` or `--name value`, options after operands, and `--` to stop.
 * `--help`, and `-h` unless the spec gives h a value, throw HelpRequest (qemu-img and qemu-io answer both with
 * their help, whatever else is on the line).
 */
export function getopt(args: readonly string[], spec: OptionSpec): ParsedArgs {
  const takesValue = new Map<string, boolean>();
  for (let i = 0; i < spec.short.length; i++) {
    const letter = spec.short[i]!;
    if (letter === ':') continue;
    takesValue.set(letter, spec.short[i + 1] === ':');
  }
  const result: ParsedArgs = { options: [], operands: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      result.operands.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const needs = spec.long?.[name];
      if (needs === undefined && name === 'help') throw new HelpRequest();
      if (needs === undefined) throw new OptionError(`unrecognized option '${arg}'`, 'unknown', arg);
      let value: string | undefined;
      if (needs) {
        value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
        if (value === undefined) throw new OptionError(`option '--${name}' requires an argument`, 'missing-value', arg);
      } else if (eq >= 0) {
        throw new OptionError(`option '--${name}' doesn't allow an argument`, 'unknown', arg);
      }
      result.options.push({ name, value });
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const needs = takesValue.get(letter);
        if (letter === 'h' && needs !== true) throw new HelpRequest();
        if (needs === undefined) throw new OptionError(`invalid option -- '${letter}'`, 'unknown', arg);
        if (!needs) {
          result.options.push({ name: letter, value: undefined });
          continue;
        }
        const value = j + 1 < arg.length ? arg.slice(j + 1) : args[++i];
        if (value === undefined) throw new OptionError(`option requires an argument -- '${letter}'`, 'missing-value', arg);
        result.options.push({ name: letter, value });
        break;
      }
      continue;
    }
    result.operands.push(arg);
  }
  return result;
}

/** The last value given for an option, or undefined. */
export function lastValue(parsed: ParsedArgs, ...names: string[]): string | undefined {
  let value: string | undefined;
  for (const option of parsed.options) if (names.includes(option.name)) value = option.value ?? '';
  return value;
}

export function hasFlag(parsed: ParsedArgs, ...names: string[]): boolean {
  return parsed.options.some((option) => names.includes(option.name));
}

export function allValues(parsed: ParsedArgs, name: string): string[] {
  return parsed.options.filter((option) => option.name === name).map((option) => option.value ?? '');
}
