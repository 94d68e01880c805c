import { EVENT_TYPE_MAX_LENGTH, checkEventTypeName, checkPrefix, resourceNames } from '@hourglass/common';

/**
 * Names are a contract shared with Terraform and running deployments: a change here
 * orphans real topics, so the exact strings are pinned.
 */
test('resourceNames gives the documented names', () => {
  expect(resourceNames('hourglass', 'track_played')).toEqual({
    topic: 'hourglass-track_played',
    subscription: 'hourglass-track_played-consumer',
    deadLetterTopic: 'hourglass-track_played-deadletter',
    deadLetterSubscription: 'hourglass-track_played-deadletter-keep',
  });
});

test('resourceNames is stable and distinct across types and prefixes', () => {
  const all = new Set<string>();
  for (const prefix of ['hourglass', 'staging', 't-1a2b']) {
    for (const type of ['track_played', 'page_viewed', 'ad_impression']) {
      const a = resourceNames(prefix, type);
      expect(resourceNames(prefix, type)).toEqual(a);
      for (const name of [a.topic, a.deadLetterTopic]) {
        expect(all.has(name)).toBe(false);
        all.add(name);
      }
    }
  }
});

/** Pub/Sub resource names: start with a letter, 3..255 of [A-Za-z0-9-_.~+%], not "goog". */
const PUBSUB_NAME = /^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$/;

test('the longest allowed prefix and type still give valid Pub/Sub names', () => {
  const prefix = `p${'x'.repeat(29)}`;
  const type = `t${'x'.repeat(EVENT_TYPE_MAX_LENGTH - 1)}`;
  expect(checkPrefix(prefix)).toBeUndefined();
  expect(checkEventTypeName(type)).toBeUndefined();
  for (const name of Object.values(resourceNames(prefix, type))) expect(name).toMatch(PUBSUB_NAME);
  for (const name of Object.values(resourceNames('a', 'b'))) expect(name).toMatch(PUBSUB_NAME);
});

test.each(['track_played', 'a', 'ab_exposure', 'v2_events', 'x1_2_3'])('event type %j is accepted', (name) => {
  expect(checkEventTypeName(name)).toBeUndefined();
});

test.each([
  ['CamelCase', 'TrackPlayed'],
  ['dashes', 'track-played'],
  ['dots', 'track.played'],
  ['a leading digit', '1track'],
  ['a leading underscore', '_track'],
  ['a trailing underscore', 'track_'],
  ['a double underscore', 'track__played'],
  ['spaces', 'track played'],
  ['the reserved goog prefix', 'goog_track'],
  ['the bare goog prefix', 'google'],
  ['empty', ''],
  ['too many characters', 't'.repeat(EVENT_TYPE_MAX_LENGTH + 1)],
])('event type with %s is rejected', (_what, name) => {
  expect(checkEventTypeName(name)).toEqual(expect.stringContaining(`"${name}"`));
});

test.each(['hourglass', 'staging-eu', 't-1a2b3c', 'a', `p${'x'.repeat(29)}`])('prefix %j is accepted', (prefix) => {
  expect(checkPrefix(prefix)).toBeUndefined();
});

test.each([
  ['uppercase', 'Hourglass'],
  ['a leading digit', '1hourglass'],
  ['a leading dash', '-hourglass'],
  ['an underscore', 'hour_glass'],
  ['a dot', 'hour.glass'],
  ['a slash', 'hour/glass'],
  ['the reserved goog prefix', 'google'],
  ['empty', ''],
  ['more than 30 characters', `p${'x'.repeat(30)}`],
])('prefix with %s is rejected', (_what, prefix) => {
  expect(checkPrefix(prefix)).toEqual(expect.stringContaining(`"${prefix}"`));
});
