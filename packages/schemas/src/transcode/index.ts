export { JsonReader, TRUE, FALSE, NULL } from './json-reader.js';
export { AvroWriter, copyBytes, longSize, writeLong } from './avro-writer.js';
export { payloadTranscoderOf, type Step } from './payload-transcoder.js';
