import { UsageError } from './usage-error.js';

/** One creation option as qemu-img's `-o help` lists it: `name=<type>` and what it does. */
interface OptionLine {
  name: string;
  type: 'str' | 'size' | 'num' | 'bool (on/off)';
  text: string;
}

/**
 * qcow2's creation options, in qemu-img's (alphabetical) order and words. qemu-img also lists encryption options
 * (`encrypt.*`, `encryption`): they are left out because `qcow create` refuses encrypted images, and a list of what
 * may be asked should not offer what is refused.
 */
const QCOW2_OPTIONS: OptionLine[] = [
  { name: 'backing_file', type: 'str', text: 'File name of a base image' },
  { name: 'backing_fmt', type: 'str', text: 'Image format of the base image' },
  { name: 'cluster_size', type: 'size', text: 'qcow2 cluster size' },
  { name: 'compat', type: 'str', text: 'Compatibility level (v2 [0.10] or v3 [1.1])' },
  { name: 'compression_type', type: 'str', text: 'Compression method used for image cluster compression' },
  { name: 'data_file', type: 'str', text: 'File name of an external data file' },
  { name: 'data_file_raw', type: 'bool (on/off)', text: 'The external data file must stay valid as a raw image' },
  { name: 'extended_l2', type: 'bool (on/off)', text: 'Extended L2 tables' },
  { name: 'lazy_refcounts', type: 'bool (on/off)', text: 'Postpone refcount updates' },
  { name: 'preallocation', type: 'str', text: 'Preallocation mode (allowed values: off, metadata, falloc, full)' },
  { name: 'refcount_bits', type: 'num', text: 'Width of a reference count entry in bits' },
  { name: 'size', type: 'size', text: 'Virtual disk size' },
];

const RAW_OPTIONS: OptionLine[] = [{ name: 'size', type: 'size', text: 'Virtual disk size' }];

/**
 * What the local file itself takes, listed when the target file is named (qemu-img merges its `file` protocol's
 * options in then). qemu-img's extent_size_hint and nocow are not here: nothing in `qcow` honours them.
 */
const FILE_OPTIONS: OptionLine[] = [{ name: 'preallocation', type: 'str', text: 'Preallocation mode (allowed values: off, falloc, full)' }];

/**
 * What `qemu-img amend` can change on a qcow2 image, in its order and words (its encrypt.* options left out, as for
 * creation: `qcow` has no encrypted images).
 */
const QCOW2_AMEND_OPTIONS: OptionLine[] = QCOW2_OPTIONS.filter((option) =>
  ['backing_file', 'backing_fmt', 'compat', 'data_file', 'data_file_raw', 'lazy_refcounts', 'refcount_bits', 'size'].includes(option.name),
);

/** True when one of the `-o` lists asks for help (`help` or `?` as an item, as qemu-img's is_help_option). */
export function wantsOptionsHelp(optionTexts: readonly string[]): boolean {
  return optionTexts.some((text) => text.replaceAll(',,', '\u0000').split(',').some((part) => part === 'help' || part === '?'));
}

/**
 * qemu-img's `-o help` for a format: without a target file, the format's options and a note that the file may take
 * more; with one, the format's and the file's options merged (the format's entry wins on a shared name), sorted.
 */
export function createOptionsHelp(format: string, withFile: boolean): string {
  const own = format === 'qcow2' ? QCOW2_OPTIONS : format === 'raw' ? RAW_OPTIONS : undefined;
  if (own === undefined) throw new UsageError(`Unknown file format '${format}'`);
  if (!withFile) {
    return [`Supported ${format} options:`, ...own.map(optionLine), '', 'The protocol level may support further options.', 'Specify the target filename to include those options.', ''].join('\n');
  }
  const merged = new Map<string, OptionLine>();
  for (const option of [...FILE_OPTIONS, ...own]) if (!merged.has(option.name) || own.includes(option)) merged.set(option.name, option);
  const sorted = [...merged.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return ['Supported options:', ...sorted.map(optionLine), ''].join('\n');
}

/** qemu-img amend's `-o help` for a qcow2 image. */
export function amendOptionsHelp(): string {
  return ["Amend options for 'qcow2':", ...QCOW2_AMEND_OPTIONS.map(optionLine), ''].join('\n');
}

function optionLine(option: OptionLine): string {
  return `  ${`${option.name}=<${option.type}>`.padEnd(22)} - ${option.text}`;
}
