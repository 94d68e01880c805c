export * from './meta.js';
export * from './registry.js';
export * from './validate.js';
export * from './codec.js';
export * from './datum-scan.js';
export * from './value-rules.js';
export * from './canonical.js';
export { readVarint, varintValue, isCanonicalVarint } from './varint.js';
