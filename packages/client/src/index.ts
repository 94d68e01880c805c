export * from './client.js';
export * from './generate.js';
