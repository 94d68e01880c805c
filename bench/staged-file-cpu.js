'use strict';
/**
 * CPU per staged file of the consumer's writer (GroupedOcfWriter, null codec as staged), for files
 * of a given number of events: 300 is what a replica writes per type each second when 75,000
 * events/s are spread over 255 types; 20,000 what 5 types make at 100,000. Run after `npx tsc -b`:
 *   node bench/staged-file-cpu.js [events per file, default 300] [files, default 2000]
 * Prints µs per file and per event, four rounds (the first warms up).
 */
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const root = path.join(__dirname, '..');
const { GroupedOcfWriter } = require(path.join(root, 'packages/bucket-format/dist/grouped-ocf.js'));
const { syncMarkerFor } = require(path.join(root, 'packages/bucket-format/dist/avro-file.js'));
const { SchemaRegistry } = require(path.join(root, 'packages/schemas/dist/index.js'));
const { Defaults } = require(path.join(root, 'packages/common/dist/index.js'));

const events = Number(process.argv[2] || 300);
const files = Number(process.argv[3] || 2000);
const latest = SchemaRegistry.load(path.join(root, 'schemas')).get('page_viewed').latest;
// Datums as staged: each starts with meta.event_id (a 36-byte string: length varint 72), ~110 bytes.
const datums = Array.from({ length: events }, () => {
  const datum = Buffer.alloc(110, 7);
  datum[0] = 72;
  datum.write(randomUUID(), 1, 'latin1');
  return datum;
});

(async () => {
  for (let round = 0; round < 4; round++) {
    const before = process.cpuUsage();
    for (let f = 0; f < files; f++) {
      const writer = new GroupedOcfWriter({
        type: latest.type,
        schema: JSON.stringify(latest.type.schema()),
        syncMarker: syncMarkerFor(`bench.${f}`),
        deflateLevel: Defaults.stageDeflateLevel,
        blockBytes: Defaults.avroBlockBytes,
      });
      for (const datum of datums) writer.appendDatumAt(datum, 0, datum.length);
      // as the stager takes the file: its parts, written with writev (builds before them: joined)
      await (writer.finishParts ? writer.finishParts() : writer.finish());
    }
    const used = process.cpuUsage(before);
    const perFile = (used.user + used.system) / files;
    console.log(
      `${events} events per file: ${perFile.toFixed(1)} µs per file, ${(perFile / events).toFixed(3)} µs per event`,
    );
  }
})();
