#!/usr/bin/env node
'use strict';
// On the emulator there is no metadata server; skip the lookup the Google libraries try.
if (process.env.PUBSUB_EMULATOR_HOST || process.env.STORAGE_EMULATOR_HOST) {
  process.env.METADATA_SERVER_DETECTION = process.env.METADATA_SERVER_DETECTION || 'none';
}
require('../dist/main.js');
