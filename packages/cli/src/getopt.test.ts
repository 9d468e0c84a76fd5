import { describe, expect, it } from 'vitest';
import { getopt } from './getopt.js';
import { HelpRequest } from './usage-error.js';

describe('getopt', () => {
  const spec = { short: 'f:O:cp', long: { output: true, 'backing-chain': false } };

  it('parses grouped flags, attached and separate values, options after operands', () => {
    const parsed = getopt(['-pc', '-fqcow2', 'a', '-O', 'raw', 'b', '--output=json', '--backing-chain'], spec);
    expect(parsed.operands).toEqual(['a', 'b']);
    expect(parsed.options).toEqual([
      { name: 'p', value: undefined },
      { name: 'c', value: undefined },
      { name: 'f', value: 'qcow2' },
      { name: 'O', value: 'raw' },
      { name: 'output', value: 'json' },
      { name: 'backing-chain', value: undefined },
    ]);
  });

  it('stops at --', () => {
    expect(getopt(['--', '-p'], spec).operands).toEqual(['-p']);
  });

  it('refuses unknown options and missing values', () => {
    expect(() => getopt(['-x'], spec)).toThrow("invalid option -- 'x'");
    expect(() => getopt(['-f'], spec)).toThrow('requires an argument');
    expect(() => getopt(['--nope'], spec)).toThrow("unrecognized option '--nope'");
  });
});

describe('getopt help', () => {
  it('throws HelpRequest for --help and -h (also grouped), not for a value that reads -h', () => {
    expect(() => getopt(['a', '--help'], { short: 'f:' })).toThrow(HelpRequest);
    expect(() => getopt(['-Uh'], { short: 'U' })).toThrow(HelpRequest);
    expect(getopt(['-f', '-h'], { short: 'f:' }).options).toEqual([{ name: 'f', value: '-h' }]);
    expect(getopt(['-h', 'x'], { short: 'h:' }).options).toEqual([{ name: 'h', value: 'x' }]);
    expect(getopt(['--', '--help'], { short: '' }).operands).toEqual(['--help']);
  });
});
