import { sha256Hex } from '@hourglass/common';
import type { ApiKey } from '@hourglass/gateway';
import { testKeys } from '../gateway/support';

/** Publishable keys for the browser suites: what a page embeds, and the origins it is served from. */
export const PUBLISHABLE = {
  token: 'hgp_pages-0123456789abcdef',
  origins: ['https://app.example.com', 'http://127.0.0.1:5173'],
  other: 'hgp_other-0123456789abcdef',
  otherOrigin: 'https://other.example.com',
};

/** The gateway suites' server keys plus two publishable keys on different origins. */
export function keysWithPublishable(pageOrigins: readonly string[] = PUBLISHABLE.origins): ApiKey[] {
  return [
    ...testKeys(),
    {
      name: 'pages',
      sha256: sha256Hex(PUBLISHABLE.token),
      types: new Set(['page_viewed', 'track_played']),
      ratePerSecond: 1_000_000,
      origins: new Set(pageOrigins),
    },
    {
      name: 'other',
      sha256: sha256Hex(PUBLISHABLE.other),
      types: new Set(['page_viewed']),
      ratePerSecond: 1_000_000,
      origins: new Set([PUBLISHABLE.otherOrigin]),
    },
  ];
}
