/**
 * The one catalogue of Hourglass error codes. Every error a user or operator can see
 * carries one of these codes, so logs, HTTP answers and CLI exit messages can be
 * searched and documented in one place (docs/errors.md mirrors this list).
 */
export const ErrorCodes = {
  // configuration and start-up
  CONFIG_INVALID: 'a setting is missing or has a bad value',
  // schemas and registry
  SCHEMA_MALFORMED: 'an .avsc file is not valid JSON or not a valid Avro schema',
  SCHEMA_NAMING: 'an event type or file name breaks the naming rules',
  SCHEMA_META_MISSING: 'the first field of an event record is not the shared meta record',
  SCHEMA_VERSION_GAP: 'schema versions of a type are not numbered 1..N',
  SCHEMA_INCOMPATIBLE: 'an older version cannot be resolved to the newest reader',
  SCHEMA_UNKNOWN_TYPE: 'no schema for this event type',
  SCHEMA_UNKNOWN_FINGERPRINT: 'no schema version with this fingerprint',
  // events and the codec
  EVENT_INVALID: 'a record does not match its schema',
  MESSAGE_CORRUPT: 'a Pub/Sub message body or its attributes cannot be decoded',
  MESSAGE_EVENT_ID_INVALID: "an event's meta.event_id in a Pub/Sub message is not a lower-case UUID",
  MESSAGE_EVENT_TIME_INVALID:
    "an event's meta.gateway_ts is older than a subscription keeps messages or ahead of the clock",
  // emulator
  EMULATOR_MISSING: 'the Google Cloud SDK Pub/Sub emulator or Java is not installed',
  EMULATOR_START_FAILED: 'the Pub/Sub emulator did not start',
  // storage
  STORAGE_PRECONDITION_FAILED: 'the object already exists (create-if-absent refused)',
  STORAGE_NOT_FOUND: 'the object does not exist',
  STORAGE_CHECKSUM_MISMATCH: 'the stored bytes do not match their checksum',
  STORAGE_UNAVAILABLE: 'the object store failed transiently',
  STORAGE_INVALID_NAME: 'an object name is empty, absolute, too long, or has an empty, ".", ".." or ".tmp-" segment',
  STORAGE_REJECTED: 'the object store refused the request permanently (permission, bad request)',
  // gateway
  HTTP_UNAUTHENTICATED: 'missing or unknown API key',
  HTTP_FORBIDDEN: 'the API key does not cover this event type',
  HTTP_RATE_LIMITED: 'the API key exceeded its rate limit',
  HTTP_BODY_TOO_LARGE: 'the request body exceeds the size limit',
  HTTP_BATCH_TOO_LARGE: 'the batch has too many events',
  HTTP_EVENT_TOO_LARGE: 'one event exceeds the per-event size limit',
  HTTP_BAD_REQUEST: 'the request is not a well-formed batch',
  HTTP_UNSUPPORTED_MEDIA_TYPE: 'the content type or encoding is not supported',
  HTTP_REQUEST_TIMEOUT: 'the request was not received within the receive timeout',
  HTTP_URI_TOO_LONG: 'a path segment of the URL is longer than any route accepts',
  HTTP_HEADERS_TOO_LARGE: 'the request line and headers exceed the size limit',
  PUBLISH_FAILED: 'Pub/Sub did not accept the publish',
  PUBLISH_TIMEOUT: 'Pub/Sub did not ack the publish within the publish timeout',
  OVERLOADED: 'outstanding publishes exceed their bound; retry later',
  SHUTTING_DOWN: 'the server is shutting down; retry on another instance',
  INTERNAL: 'an internal error',
  HTTP_NOT_FOUND: 'no such route or method',
  ORIGIN_NOT_ALLOWED: 'the Origin is missing or not listed on the publishable API key',
  // consumer
  MANIFEST_MISMATCH: 'files do not match their manifest',
  STAGED_FILE_CORRUPT: 'a staged part file is not a readable Avro container file',
  FINAL_FILE_CONFLICT: 'a final file from an earlier attempt has different bytes than this finalize produced',
  LEASE_EXPIRED: 'this replica could not renew its watermark lease in time and stops staging until it does',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class HourglassError extends Error {
  readonly code: ErrorCode;
  /** Field path inside a record or setting name the error is about, when there is one. */
  readonly path: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HourglassError';
    this.code = code;
    this.path = options?.path;
  }

  /** One line for a terminal: code, then message. */
  toLine(): string {
    return `${this.code}: ${this.message}`;
  }
}

export function isHourglassError(e: unknown, code?: ErrorCode): e is HourglassError {
  return e instanceof HourglassError && (code === undefined || e.code === code);
}
