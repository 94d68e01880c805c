export * from './errors.js';
export * from './clock.js';
export * from './duration.js';
export * from './naming.js';
export * from './logger.js';
export * from './defaults.js';
export * from './config.js';
export * from './telemetry.js';
