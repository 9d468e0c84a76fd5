export { DirtyBitmap, MAX_BITMAP_BITS, type DirtyExtent } from './dirty-bitmap.js';
export { bitmapTableSize, bitmapDataCluster, loadBitmapCluster } from './bitmap-clusters.js';
export { readBitmap, type StoredBitmap } from './read-bitmap.js';
