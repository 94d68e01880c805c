export * from './store.js';
export * from './local.js';
export * from './gcs.js';
export * from './factory.js';
export { checkObjectName } from './names.js';
export { storeSettings, loadStoreSettings, type StoreSettings } from './settings.js';
