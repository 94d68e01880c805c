import { stackLayout } from '@hourglass/cli/commands/up';

/** Issue #14.8: `hourglass up` took its consumer port from a constant, so a second stack clashed on 8081. */
describe('hourglass up: two stacks on one machine', () => {
  test('the default stack keeps 8080/8081 and .run', () => {
    expect(stackLayout('/repo', { port: '8080' })).toEqual({
      gatewayPort: 8080,
      consumerPort: 8081,
      runDir: '/repo/.run',
    });
  });

  test('a second stack on another gateway port gets its own consumer port and run directory', () => {
    const a = stackLayout('/repo', { port: '8080' });
    const b = stackLayout('/repo', { port: '9080' });
    expect(b).toEqual({ gatewayPort: 9080, consumerPort: 9081, runDir: '/repo/.run/9080' });
    const ports = [a.gatewayPort, a.consumerPort, b.gatewayPort, b.consumerPort];
    expect(new Set(ports).size).toBe(4);
    expect(a.runDir).not.toBe(b.runDir);
  });

  test('--consumer-port is honoured', () => {
    expect(stackLayout('/repo', { port: '8080', consumerPort: '18081' })).toMatchObject({ consumerPort: 18081 });
  });

  test.each([
    [{ port: '0x50' }, '--port'],
    [{ port: '70000' }, '--port'],
    [{ port: '8080', consumerPort: '8080' }, '--consumer-port'],
    [{ port: '8080', consumerPort: '-1' }, '--consumer-port'],
    [{ port: '65535' }, '--consumer-port'],
  ])('%j is refused naming %s', (opts, option) => {
    expect(() => stackLayout('/repo', opts)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', path: option }));
  });
});
