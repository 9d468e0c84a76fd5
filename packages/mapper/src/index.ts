export { ClusterMapper, ACTIVE_L2_TABLE, type ClusterMapperOptions } from './cluster-mapper.js';
export { L1Table } from './l1-table.js';
export { MetadataRegions } from './metadata-regions.js';
export {
  appendExtent,
  type MapExtent,
  type DataExtent,
  type ZeroExtent,
  type CompressedExtent,
  type UnallocatedExtent,
} from './map-extent.js';
export { L2Writer, referencedClusters, subclusterMask, tableReferences, type L2WriterOptions, type WritableTable, type NewEntry, type NewTable } from './l2-writer.js';
