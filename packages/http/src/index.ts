export { httpStore } from './http-store.js';
export { openHttpFile, HttpBlockFile } from './http-file.js';
export type { HttpOptions, FetchFunction } from './http-options.js';
