import { describe, expect, it } from 'vitest';
import { qemuJson } from './qemu-json.js';

describe('qemuJson', () => {
  it('prints empty arrays over two lines, the bracket under its key', () => {
    expect(qemuJson({ a: [{ flags: [], name: 'x[]' }], b: [] })).toBe(
      ['{', '    "a": [', '        {', '            "flags": [', '            ],', '            "name": "x[]"', '        }', '    ],', '    "b": [', '    ]', '}'].join('\n'),
    );
  });
});
