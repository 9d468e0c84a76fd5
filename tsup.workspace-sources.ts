import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

const root = dirname(fileURLToPath(import.meta.url));

/**
 * Resolves `@q/NAME` and `@q/NAME/SUB` to the package's TypeScript source (the file its `exports` entry is built
 * from, dist/X.js -> src/X.ts) instead of its one-file dist, for a build that inlines workspace packages (the CLI):
 * esbuild then sees each source file as its own module, so code splitting can leave out of a command's chunks the
 * files it never reaches (the NBD server and its node:tls for `qcow info`), which a package's single dist module
 * would bring whole. Names in `keep` stay imports of the package.
 */
export function workspaceSources(keep: readonly string[] = []): Plugin {
  return {
    name: 'workspace-sources',
    setup(build) {
      build.onResolve({ filter: /^@q\// }, (args) => {
        const [, name, ...rest] = args.path.split('/');
        if (keep.includes(`@q/${name}`)) return { path: args.path, external: true };
        const directory = join(root, 'packages', name!);
        const manifest = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as {
          exports: Record<string, { default: string }>;
        };
        const entry = manifest.exports[rest.length === 0 ? '.' : `./${rest.join('/')}`];
        if (entry === undefined) return { errors: [{ text: `${args.path} is not exported by @q/${name}` }] };
        return { path: join(directory, entry.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts')) };
      });
    },
  };
}
