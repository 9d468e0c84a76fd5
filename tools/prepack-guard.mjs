#!/usr/bin/env node
// Every package's `prepack` script: refuses to pack (and so to publish) a package whose build is missing.
// `files: ["dist"]` quietly packs nothing when dist/ is absent, and `pnpm publish` would then ship a package whose
// `exports` lead nowhere; this names the missing file instead. Run from the package directory, as npm and pnpm
// run lifecycle scripts.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const packageDir = process.cwd();
const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));

/** Every file path a manifest promises to consumers: exports targets (all conditions), bins, main, types. */
function promisedFiles(pkg) {
  const found = [];
  const walk = (value, where) => {
    if (typeof value === 'string') found.push({ path: value, where });
    else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) walk(inner, `${where}[${JSON.stringify(key)}]`);
    }
  };
  walk(pkg.exports, 'exports');
  walk(typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : pkg.bin, 'bin');
  for (const field of ['main', 'module', 'types']) walk(pkg[field], field);
  // A pattern export ("./*": "./dist/*.js") names no single file; null targets block a subpath on purpose.
  return found.filter(({ path }) => !path.includes('*'));
}

const missing = promisedFiles(manifest).filter(({ path }) => !existsSync(join(packageDir, path)));
if (missing.length > 0) {
  const lines = missing.map(({ path, where }) => `  ${path} (${where})`);
  process.stderr.write(
    `${manifest.name}: cannot pack, the build is missing:\n${lines.join('\n')}\n` +
      `Build first (pnpm build at the repository root); a tarball without these files would install but not import.\n`,
  );
  process.exit(1);
}
