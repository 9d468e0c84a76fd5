export { RefcountStore, type RefcountStoreOptions } from './refcount-store.js';
export { planTableGrowth, type GrowthInput, type GrowthPlan } from './table-growth.js';
