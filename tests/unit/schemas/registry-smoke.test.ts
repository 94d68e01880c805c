import { SchemaRegistry } from '@hourglass/schemas';

test('the shipped schemas load and every type resolves to its newest version', () => {
  const registry = SchemaRegistry.load('schemas');
  expect(registry.eventTypes().length).toBeGreaterThanOrEqual(5);
  expect(registry.get('track_played').latest.version).toBe(2);
});
