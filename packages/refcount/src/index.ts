export { RefcountStore, type RefcountStoreOptions } from './refcount-store.js';
export { planRefcountStructures, type StructureInput, type StructurePlan } from './table-growth.js';
