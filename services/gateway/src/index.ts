export * from './app.js';
export * from './config.js';
export * from './api-keys.js';
export * from './batch-answer.js';
export * from './publisher.js';
export { ThreadedPublisher } from './threaded-publisher.js';
export type { Readiness } from './readiness.js';
