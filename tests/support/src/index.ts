export { QCOW_CLI, repoPath, requireTool, run, runOk, runBinary, runBytes, qemuImg, qemuIo, qcow, type RunResult } from './tools.js';
export { scratch, sha256File, qemuRaw, type Scratch } from './scratch.js';
export {
  HeaderExtensionType,
  readHeaderArea,
  rewriteHeaderExtensions,
  addUnknownHeaderExtension,
  dropHeaderExtension,
  type HeaderArea,
  type HeaderExtension,
} from './qcow2-header.js';
export { workload, batches, l2Coverage, Rng, KiB, MiB, GiB, TiB, type WorkloadShape } from './workload.js';
export { canConnect } from './can-connect.js';
