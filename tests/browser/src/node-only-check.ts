import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import type { BrowserBundle } from './browser-bundle.js';

/** The packages a browser build may contain: the core, without the driver (`@q/vkd`), the CLI or `@q/posix`. */
const BROWSER_PACKAGES = new Set(['raw', 'format', 'cache', 'refcount', 'mapper', 'snapshots', 'backing', 'bitmaps', 'qcow2', 'http']);

const RUNTIME = "(esbuild's runtime)";

const NODE_BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** What Node code leaves in a bundle: CommonJS loading, Node's process object, Node's Buffer. */
const NODE_ONLY_TEXT = [/\brequire\(/, /\bprocess\./, /\bBuffer\b/];

/**
 * Why the bundle would not run in a browser, one line each (none: it is clean). `platform: 'browser'` already
 * fails the build on a Node import it must resolve; this catches what slips past resolution: an import left
 * external, a Node subpath entry (`@q/raw/node`, `@q/qcow2/node`: dist/node.js) or a package that is Node only by
 * design, and Node globals used without an import in our own packages' code (third-party code may test for
 * `process` harmlessly, so only our sections of the text are read).
 */
export function nodeOnlyFindings(bundle: BrowserBundle): string[] {
  const findings: string[] = [];
  const inputs = bundle.metafile.inputs;
  for (const [input, { imports }] of Object.entries(inputs)) {
    const ours = ourPackage(input);
    if (ours !== undefined && !BROWSER_PACKAGES.has(ours.name)) findings.push(`${input}: @q/${ours.name} is not a browser package`);
    if (ours !== undefined && /^(node|testing|conformance)\.js$/.test(ours.file)) findings.push(`${input}: a Node-only entry of @q/${ours.name}`);
    for (const imported of imports) {
      if (imported.external === true || imported.path.startsWith('node:') || NODE_BUILTINS.has(imported.path)) {
        findings.push(`${input} imports ${imported.path}${imported.external === true ? ' (left external)' : ''}`);
      }
    }
  }
  for (const output of Object.keys(bundle.metafile.outputs)) {
    if (!output.endsWith('.js')) continue;
    for (const section of sections(readFileSync(join(bundle.workingDir, output), 'utf8'), inputs)) {
      // The runtime is esbuild's own helpers, there only if some input needs them (`__require` for a require call).
      const checked = section.input === RUNTIME || section.input === 'src/browser-entry.ts' || ourPackage(section.input) !== undefined;
      if (!checked) continue;
      for (const pattern of NODE_ONLY_TEXT) {
        const line = section.lines.find((text) => pattern.test(text));
        if (line !== undefined) findings.push(`${output} (from ${section.input}) uses ${pattern.source}: ${line.trim()}`);
      }
    }
  }
  return findings;
}

/** `../../packages/<name>/dist/<file>` (a workspace package's build), else undefined (third-party code). */
function ourPackage(input: string): { name: string; file: string } | undefined {
  const match = /^(?:\.\.\/)+packages\/([^/]+)\/dist\/(.+)$/.exec(input);
  return match === null ? undefined : { name: match[1]!, file: match[2]! };
}

/** The output split at esbuild's `// <input path>` lines, each part with the input it came from. */
function sections(text: string, inputs: BrowserBundle['metafile']['inputs']): { input: string; lines: string[] }[] {
  const parts: { input: string; lines: string[] }[] = [{ input: RUNTIME, lines: [] }];
  for (const line of text.split('\n')) {
    const marker = line.startsWith('// ') ? line.slice(3) : undefined;
    if (marker !== undefined && marker in inputs) parts.push({ input: marker, lines: [] });
    else parts.at(-1)!.lines.push(line);
  }
  return parts;
}
