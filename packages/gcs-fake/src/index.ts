/**
 * A GCS JSON-API fake for tests: the real @google-cloud/storage client talks to it over HTTP.
 *
 *   const fake = await start();                       // http://127.0.0.1:<free port>
 *   const store = new GcsStore({ bucket: 'b', storage: { apiEndpoint: fake.url } });
 *   // or: process.env.STORAGE_EMULATOR_HOST = fake.url; createStore('gs://b/prefix')
 *   fake.faults.failNext(2);                          // next 2 requests answer 503
 *   fake.requests.count('upload.multipart');          // requests per route
 *   await fake.stop();
 */
export { start } from './server.js';
export type { GcsFakeOptions, RequestLogEntry, RunningGcsFake } from './server.js';
export { Faults, type FaultScope } from './faults.js';
export { RequestCounter, Routes, UploadRoutes, WriteRoutes, type Route } from './routes.js';
export { FakeState, type StoredObject } from './state.js';
export { crc32cBase64, md5Base64 } from './hashes.js';
