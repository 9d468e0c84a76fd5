import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installConsumer } from './consumer-project.js';
import { exec, execOk } from './exec.js';
import { nativeAddonReport } from './native-addons.js';
import { packAll, type Tarball } from './pack.js';
import { publishablePackages, repoRoot } from './workspace-packages.js';

/** What the stranger asks for; everything else of ours must arrive as their dependencies, from the tarballs. */
const DIRECT = ['@q/raw', '@q/format', '@q/qcow2'];
const fixtures = join(repoRoot, 'fixtures', 'images');

/** The files an `exports` map points at, under every condition. */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (exports === null || typeof exports !== 'object') return [];
  return Object.values(exports).flatMap(exportTargets);
}

describe('the packages as a stranger installs them (pnpm pack, then npm install outside the workspace)', () => {
  let work: string;
  let project: string;
  let tarballs: Map<string, Tarball>;
  const seconds: Record<string, number> = {};

  const timed = async <T>(step: string, action: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await action();
    } finally {
      seconds[step] = Math.round((performance.now() - start) / 100) / 10;
    }
  };
  const tsc = (config: string) => execOk(process.execPath, [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], { cwd: project });

  beforeAll(async () => {
    // Outside the repository, so that nothing of the workspace (node_modules, .npmrc, pnpm-workspace.yaml) is found.
    work = mkdtempSync(join(tmpdir(), 'qcow-pack-'));
    project = join(work, 'stranger');
    mkdirSync(join(work, 'tarballs'));
    mkdirSync(project);
    tarballs = await timed('pack', () => packAll(join(work, 'tarballs')));
    await timed('npm install', () => installConsumer(project, tarballs, DIRECT));
  });

  afterAll(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
    console.log(`pack-install steps (s): ${JSON.stringify(seconds)}`);
  });

  it('packs every package with its build, README and LICENSE, and no sources or tests', () => {
    for (const { manifest } of publishablePackages()) {
      const tarball = tarballs.get(manifest.name);
      expect(tarball, manifest.name).toBeDefined();
      const files = new Set(tarball!.files);
      for (const target of exportTargets(manifest.exports)) expect(files.has(target.replace(/^\.\//, '')), `${manifest.name}: ${target}`).toBe(true);
      expect(files.has('README.md') && files.has('LICENSE'), `${manifest.name}: README.md and LICENSE`).toBe(true);
      expect(tarball!.files.filter((file) => file.startsWith('src/') || /\.test\./.test(file)), manifest.name).toEqual([]);
    }
  });

  it('publishes @q dependencies as caret ranges of the version packed', () => {
    for (const [name, { manifest }] of tarballs) {
      for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies'] as const) {
        for (const [dependency, range] of Object.entries(manifest[field] ?? {})) {
          const packed = tarballs.get(dependency);
          if (packed !== undefined) expect(range, `${name} ${field}.${dependency}`).toBe(`^${packed.manifest.version}`);
        }
      }
    }
  });

  it('installed every @q package from its tarball, never from the registry', () => {
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')) as { packages: Record<string, { resolved?: string }> };
    const ours = Object.entries(lock.packages).filter(([path]) => /node_modules\/@q\//.test(path));
    expect(ours.length).toBeGreaterThan(DIRECT.length); // the direct ones and what they depend on
    for (const [path, entry] of ours) expect(entry.resolved, path).toMatch(/^file:/);
  });

  it('built no native addon while installing', () => {
    const report = nativeAddonReport(project);
    console.log(`install scripts that built nothing: ${report.installScripts.join(', ') || 'none'}`);
    expect(report.buildSteps).toEqual([]);
  });

  it('type-checks and compiles the program with module nodenext', async () => {
    await timed('tsc nodenext', () => tsc('tsconfig.nodenext.json'));
  });

  it('type-checks the program with module preserve and moduleResolution bundler', async () => {
    await timed('tsc bundler', () => tsc('tsconfig.bundler.json'));
  });

  it('reads every committed fixture through its own store, matching qemu-img byte for byte', async () => {
    const program = join(project, 'out', 'main.js');
    expect(existsSync(program), 'the nodenext compile (above) emits the program').toBe(true);
    const result = await timed('run', () => exec(process.execPath, [program, fixtures], { cwd: project }));
    expect(result.output).toMatch(/^checked [1-9]\d* images: 0 problems$/m);
    expect(result.status, result.output).toBe(0);
  });
});
