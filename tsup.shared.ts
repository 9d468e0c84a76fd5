import type { Options } from 'tsup';

/** The build every package shares: ESM with .d.ts for each entry, for Node 20 and browsers alike. */
export function packageBuild(entry: string[], extra: Options = {}): Options {
  return { entry, format: ['esm'], dts: true, clean: true, target: 'es2022', ...extra };
}
