import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from './exec.js';
import { repoRoot } from './workspace-packages.js';

export interface Example {
  /** The README, relative to the repository root. */
  readme: string;
  /** 1-based line in the README of the example's first line of code. */
  line: number;
  code: string;
}

/** The ```ts (or ```typescript) blocks of a Markdown file, in order. */
export function typescriptExamples(readme: string): Example[] {
  const lines = readFileSync(join(repoRoot, readme), 'utf8').split('\n');
  const examples: Example[] = [];
  let start = -1;
  lines.forEach((text, index) => {
    if (start < 0 && /^```(ts|typescript)\s*$/.test(text)) start = index + 1;
    else if (start >= 0 && /^```\s*$/.test(text)) {
      examples.push({ readme, line: start + 1, code: lines.slice(start, index).join('\n') });
      start = -1;
    }
  });
  return examples;
}

/**
 * The compiler options a user's Node project would have: strict, Node's own module resolution (so every import
 * must go through a package's `exports`), top-level await. Each example is a module of its own, as pasted alone.
 */
const compilerOptions = {
  module: 'nodenext',
  moduleResolution: 'nodenext',
  moduleDetection: 'force',
  target: 'es2022',
  lib: ['es2022'],
  types: ['node'],
  strict: true,
  skipLibCheck: true,
  noEmit: true,
};

/**
 * Type-checks every example in one tsc run against the built workspace packages, and returns tsc's complaints
 * with each location turned into README:line. The files live in a scratch folder inside this package, so that
 * `@q/...` imports resolve through its node_modules as they would in a project that installed them.
 */
export async function typeCheckExamples(examples: readonly Example[]): Promise<string[]> {
  const packageDir = join(import.meta.dirname, '..');
  const scratch = mkdtempSync(join(packageDir, '.readme-'));
  try {
    const files = examples.map((example, index) => {
      const file = `example-${index}.ts`;
      writeFileSync(join(scratch, file), `${example.code}\n`);
      return file;
    });
    writeFileSync(join(scratch, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }));
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await exec(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: scratch });
    const complaints = result.output.split('\n').filter((line) => line.trim() !== '');
    if (result.status !== 0 && complaints.length === 0) complaints.push(`tsc exited ${result.status} without a message`);
    return complaints.map((line) => line.replace(/^example-(\d+)\.ts\((\d+),(\d+)\)/, (_, index: string, row: string, column: string) => {
      const example = examples[Number(index)]!;
      return `${example.readme}:${example.line + Number(row) - 1}:${column}`;
    }));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
