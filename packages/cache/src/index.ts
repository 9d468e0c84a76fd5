export { TableCache, type TableCacheOptions } from './table-cache.js';
