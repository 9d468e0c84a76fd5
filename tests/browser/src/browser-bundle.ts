import { build, type Metafile } from 'esbuild';
import { fileURLToPath } from 'node:url';

/** This test package's directory, where the entry is found. */
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

export interface BrowserBundle {
  /** Where the files were written; the entry is `browser-entry.js` in it. */
  outdir: string;
  /** The directory the metafile's paths are relative to. */
  workingDir: string;
  /** esbuild's record of every input and output. */
  metafile: Metafile;
}

/**
 * Bundles browser-entry.ts and the core packages it imports (their built dist, as users get them) into ESM files a
 * browser loads. `platform: 'browser'` makes the build itself the first guard: a `node:` import or a Node
 * built-in anywhere it reaches cannot be resolved and fails the build, naming the importer. `splitting` keeps the
 * engine's lazy `import()` of the portable codecs a separate file, so the browser really fetches it on demand.
 * Not minified, so the output names each input in a `// path` line (node-only-check.ts reads them).
 */
export async function bundleForBrowser(outdir: string): Promise<BrowserBundle> {
  const result = await build({
    absWorkingDir: PACKAGE_DIR,
    entryPoints: ['src/browser-entry.ts'],
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    splitting: true,
    target: 'es2022',
    metafile: true,
    write: true,
    logLevel: 'silent',
    // tsup leaves `import "@q/raw"` behind where only types were used; sideEffects: false makes esbuild drop it,
    // which is right, and it would say so on every run.
    logOverride: { 'ignored-bare-import': 'silent' },
  }).catch((error: unknown) => {
    const errors = (error as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors ?? [];
    const said = errors.map((e) => (e.location == null ? e.text : `${e.location.file}:${e.location.line}: ${e.text}`));
    throw new Error(`esbuild could not bundle the core packages for browsers: ${said.join('; ') || String(error)}`, { cause: error });
  });
  return { outdir, workingDir: PACKAGE_DIR, metafile: result.metafile };
}
