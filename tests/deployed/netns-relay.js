'use strict';
/**
 * Joins network namespaces through Unix sockets, which are files and so cross them.
 * Inside an instance's namespace it listens on 127.0.0.1:<port> for the hosts the instance
 * reaches (the Pub/Sub emulator and the GCS fake keep their address there) and relays the
 * instance's container port to a socket; on the host it relays those sockets to the real ports.
 * Argument: JSON {"relays":[{"listen":<port or socket path>,"connect":<port or socket path>}]}
 * (a number is 127.0.0.1:<port>). Prints "ready" once every listener is up.
 */
const net = require('node:net');

const spec = JSON.parse(process.argv[2]);

function join(a, b) {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

const connectTo = (target) => (typeof target === 'number' ? net.connect(target, '127.0.0.1') : net.connect(target));

function listen(server, address) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (typeof address === 'number') server.listen(address, '127.0.0.1', resolve);
    else server.listen(address, resolve);
  });
}

async function main() {
  await Promise.all(
    spec.relays.map((r) =>
      listen(
        net.createServer((c) => join(c, connectTo(r.connect))),
        r.listen,
      ),
    ),
  );
  process.stdout.write('ready\n');
}

main().catch((e) => {
  process.stderr.write(`netns-relay: ${e.stack}\n`);
  process.exit(1);
});
