/** JSON's syntax bytes, for readers of JSON bytes outside this package (the gateway's body reader). */
export * as JsonBytes from './json-bytes.js';
export { JsonReader, TRUE, FALSE, NULL } from './json-reader.js';
export { AvroWriter, copyBytes, longSize, writeLong } from './avro-writer.js';
export { payloadTranscoderOf, type Step } from './payload-transcoder.js';
export { NameTable } from './name-table.js';
export { buildWasmProgram } from './wasm-program.js';
export { WasmBodyReader, ReadStop, WASM_COLUMNS } from './wasm-reader.js';
