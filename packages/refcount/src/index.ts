export { RefcountStore, type RefcountStoreOptions, type RefcountListener } from './refcount-store.js';
export { planRefcountStructures, type StructureInput, type StructurePlan } from './table-growth.js';
