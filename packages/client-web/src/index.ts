export { HourglassWeb, type WebClientOptions, type WebClientStats } from './client.js';
export { PERMANENT_STATUSES, backoffMs, newEventId, retryAfterMs } from './rules.js';
