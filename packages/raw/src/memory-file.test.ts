import { describeBlockFileConformance } from './conformance.js';
import { MemoryBlockFile } from './memory-file.js';

describeBlockFileConformance('MemoryBlockFile', {
  create: async () => new MemoryBlockFile(),
  readOnly: async (bytes) => new MemoryBlockFile(bytes.slice(), { writable: false }),
});

describeBlockFileConformance('MemoryBlockFile (deallocate)', {
  create: async () => new MemoryBlockFile(new Uint8Array(0), { deallocate: true }),
  readOnly: async (bytes) => new MemoryBlockFile(bytes.slice(), { writable: false, deallocate: true }),
});
