#!/usr/bin/env node
'use strict';
// On the emulator there is no metadata server; skip the lookup the Google libraries try.
if (process.env.PUBSUB_EMULATOR_HOST || process.env.STORAGE_EMULATOR_HOST) {
  process.env.METADATA_SERVER_DETECTION = process.env.METADATA_SERVER_DETECTION || 'none';
}
try {
  require('../dist/main.js');
} catch (err) {
  // A clone that was never built has no dist/ (the CLI's or a workspace's it loads): say what to do.
  // The first line names the missing module; the require stack after it always holds dist/.
  const missing = String(err && err.message).split('\n')[0];
  if (err && err.code === 'MODULE_NOT_FOUND' && /[\\/]dist[\\/]/.test(missing)) {
    process.stderr.write('hourglass is not built: run `make build`\n');
    process.exit(1);
  }
  throw err;
}
