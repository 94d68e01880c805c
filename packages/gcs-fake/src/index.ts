/**
 * A GCS JSON-API fake for tests: the real @google-cloud/storage client talks to it over HTTP.
 *
 *   const fake = await start();                       // http://127.0.0.1:<free port>
 *   const store = new GcsStore({ bucket: 'b', storage: { apiEndpoint: fake.url } });
 *   // or: process.env.STORAGE_EMULATOR_HOST = fake.url; createStore('gs://b/prefix')
 *   fake.faults.failNext(2);                          // next 2 requests answer 503
 *   fake.faults.hang(1, { routes: ['object.get'] });  // the next metadata read is never answered
 *   fake.writeRateLimit.enable(1000);                 // GCS's one write per second per name
 *   fake.requests.count('upload.multipart');          // requests per route (also GET /_fake/stats)
 *   fake.requests.downloadBytes;                      // { whole, range }: object bytes downloads served
 *   await fake.stop();
 *
 * The bucket is hierarchical-namespace: folders, and folder renames as long-running operations.
 */
export { start } from './server.js';
export type { GcsFakeOptions, RequestLogEntry, RunningGcsFake } from './server.js';
export { Faults, type FaultScope } from './faults.js';
export { WriteRateLimit, ObjectMutationRoutes } from './rate-limit.js';
export {
  RequestCounter,
  Routes,
  UploadRoutes,
  WriteRoutes,
  operationOf,
  type Operation,
  type Route,
} from './routes.js';
export { FakeState, type StoredObject } from './state.js';
export { crc32cBase64, md5Base64 } from './hashes.js';
