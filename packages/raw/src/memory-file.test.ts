import { describeBlockFileConformance } from './conformance.js';
import { MemoryBlockFile } from './memory-file.js';

describeBlockFileConformance('MemoryBlockFile', {
  create: async () => new MemoryBlockFile(),
  readOnly: async (bytes) => new MemoryBlockFile(bytes.slice(), { writable: false }),
});
