export * from './store.js';
export * from './local.js';
