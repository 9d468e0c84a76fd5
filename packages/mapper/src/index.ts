export { ClusterMapper, type ClusterMapperOptions, type ReservedRange } from './cluster-mapper.js';
export {
  appendExtent,
  type MapExtent,
  type DataExtent,
  type ZeroExtent,
  type CompressedExtent,
  type UnallocatedExtent,
} from './map-extent.js';
