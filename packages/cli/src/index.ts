export { main } from './main.js';
export { parseSize, formatSize } from './numbers.js';
export { getopt, type OptionSpec, type ParsedArgs } from './getopt.js';
