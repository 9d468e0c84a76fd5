export { QCOW_CLI, repoPath, requireTool, run, runOk, runBinary, qemuImg, qemuIo, qcow, type RunResult } from './tools.js';
export { scratch, sha256File, qemuRaw, type Scratch } from './scratch.js';
