import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The order in which the guest must insmod the kernel modules it needs. Debian's kernel package ships no
 * modules.dep (depmod writes it at install time, and the host may have no kmod), so the dependencies are read
 * from each module's own `.modinfo` ELF section: `depends=a,b` lists the modules whose symbols it uses, and
 * `softdep=pre: X` names a module (or alias) it asks for at run time. busybox's insmod loads one file and resolves
 * nothing, so a module must come after everything it depends on.
 */

/** A module's name as the kernel spells it: dashes in file names are underscores. */
export function moduleName(fileOrName: string): string {
  return fileOrName.replace(/\.ko(\.[a-z]+)?$/, '').replace(/^.*\//, '').replaceAll('-', '_');
}

/** Every `.ko` file under a modules directory, by module name. */
export function indexModules(modulesDir: string): Map<string, string> {
  const index = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ko')) index.set(moduleName(entry.name), path);
      else if (/\.ko\.[a-z]+$/.test(entry.name)) throw new Error(`${path}: compressed modules are not supported (busybox insmod of a plain .ko)`);
    }
  };
  walk(modulesDir);
  return index;
}

/** The `key=value` strings of an ELF64 little-endian object's `.modinfo` section. */
export function modinfo(ko: Buffer): Array<[string, string]> {
  if (ko.readUInt32BE(0) !== 0x7f454c46 || ko[4] !== 2 || ko[5] !== 1) throw new Error('not a little-endian ELF64 module');
  const sectionTable = Number(ko.readBigUInt64LE(0x28));
  const entrySize = ko.readUInt16LE(0x3a);
  const count = ko.readUInt16LE(0x3c);
  const namesIndex = ko.readUInt16LE(0x3e);
  const section = (i: number): { name: number; offset: number; size: number } => {
    const at = sectionTable + i * entrySize;
    return { name: ko.readUInt32LE(at), offset: Number(ko.readBigUInt64LE(at + 0x18)), size: Number(ko.readBigUInt64LE(at + 0x20)) };
  };
  const names = section(namesIndex);
  for (let i = 0; i < count; i++) {
    const s = section(i);
    const nameEnd = ko.indexOf(0, names.offset + s.name);
    if (ko.toString('latin1', names.offset + s.name, nameEnd) !== '.modinfo') continue;
    return ko
      .toString('utf8', s.offset, s.offset + s.size)
      .split('\0')
      .filter((item) => item.includes('='))
      .map((item) => [item.slice(0, item.indexOf('=')), item.slice(item.indexOf('=') + 1)]);
  }
  throw new Error('no .modinfo section');
}

export interface ModulePlan {
  /** Module files in load order: each after all it depends on. */
  files: string[];
  names: string[];
}

/**
 * The modules to load for `wanted`, dependencies first (a depth-first walk: a module is emitted once all it
 * depends on has been). A soft dependency must be met by a module of the plan that carries it as its name or
 * alias: the guest has no modprobe to fetch it when ext4 asks for crc32c at mount time, so a missing one fails here
 * rather than as a mount error inside the guest.
 */
export function planModules(modulesDir: string, wanted: readonly string[]): ModulePlan {
  const index = indexModules(modulesDir);
  const infos = new Map<string, Array<[string, string]>>();
  const info = (name: string): Array<[string, string]> => {
    let known = infos.get(name);
    if (known === undefined) {
      const file = index.get(name);
      if (file === undefined) throw new Error(`kernel module ${name} is not in ${modulesDir} (built into this kernel? then leave it out)`);
      known = modinfo(readFileSync(file));
      infos.set(name, known);
    }
    return known;
  };
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string): void => {
    if (order.includes(name)) return;
    if (visiting.has(name)) throw new Error(`kernel module dependency loop through ${name}`);
    visiting.add(name);
    for (const [key, value] of info(name)) {
      if (key !== 'depends') continue;
      for (const dependency of value.split(',').filter(Boolean)) visit(moduleName(dependency));
    }
    visiting.delete(name);
    order.push(name);
  };
  for (const name of wanted) visit(moduleName(name));

  const provided = new Set(order.flatMap((name) => [name, ...info(name).filter(([key]) => key === 'alias').map(([, alias]) => alias)]));
  for (const name of order) {
    for (const [key, value] of info(name)) {
      if (key !== 'softdep') continue;
      const pre = /pre:\s*([^:]*?)(\s+post:|$)/.exec(value)?.[1] ?? '';
      for (const soft of pre.split(/\s+/).filter(Boolean)) {
        if (!provided.has(soft) && !provided.has(moduleName(soft))) throw new Error(`kernel module ${name} wants ${soft} first (softdep): add a module that provides it`);
      }
    }
  }
  return { names: order, files: order.map((name) => index.get(name) as string) };
}
