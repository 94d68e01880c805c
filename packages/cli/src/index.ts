export * from './provision.js';
export * from './processes.js';
export { decodeContainer, verifyManifest, listWindows, type WindowRow } from './commands/data.js';
