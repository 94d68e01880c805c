export * from './store.js';
export * from './local.js';
export * from './gcs.js';
export * from './factory.js';
export { checkObjectName } from './names.js';
