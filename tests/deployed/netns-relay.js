'use strict';
/**
 * Runs inside one instance's own network namespace, where only that instance's loopback
 * exists, and joins it to the host through Unix sockets (which are files, so they cross
 * network namespaces):
 *   outbound: listens on 127.0.0.1:<port> and relays to a socket the test serves on the host
 *             (the Pub/Sub emulator and the GCS fake keep their host:port inside the instance);
 *   inbound:  listens on a socket and relays to 127.0.0.1:<port> (the container port).
 * Argument: JSON {"outbound":[{"port":n,"socket":"path"}],"inbound":[{"socket":"path","port":n}]}.
 * Prints "ready" once every listener is up.
 */
const net = require('node:net');

const spec = JSON.parse(process.argv[2]);

function join(a, b) {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

function listen(server, ...address) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(...address, resolve);
  });
}

async function main() {
  const listening = [];
  for (const o of spec.outbound) {
    const server = net.createServer((c) => join(c, net.connect(o.socket)));
    listening.push(listen(server, o.port, '127.0.0.1'));
  }
  for (const i of spec.inbound) {
    const server = net.createServer((c) => join(c, net.connect(i.port, '127.0.0.1')));
    listening.push(listen(server, i.socket));
  }
  await Promise.all(listening);
  process.stdout.write('ready\n');
}

main().catch((e) => {
  process.stderr.write(`netns-relay: ${e.stack}\n`);
  process.exit(1);
});
