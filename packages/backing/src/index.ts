export { resolveBackingPath, hasProtocol } from './backing-path.js';
export { probeFormat } from './probe-format.js';
export { openChain, DEFAULT_MAX_DEPTH, type BackingOpener, type ChainOptions } from './backing-chain.js';
export { chainStatus, continuesRun, type ChainExtent } from './chain-status.js';
