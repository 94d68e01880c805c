/**
 * The one naming function for Pub/Sub resources, used by the gateway, the consumer,
 * the local provisioner and (through the generated infra/event_types.auto.tfvars.json)
 * Terraform. Change names here and nowhere else.
 */

/** Event types are lower snake case: safe in Pub/Sub names, GCS paths and Avro names. */
export const EVENT_TYPE_PATTERN = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
/** Longest event type; keeps every derived Pub/Sub name far below its 255-char limit. */
export const EVENT_TYPE_MAX_LENGTH = 64;
/** Prefixes: a letter first (Pub/Sub rule), no "goog" (reserved by Pub/Sub). */
export const PREFIX_PATTERN = /^[a-z][a-z0-9-]{0,29}$/;

export interface ResourceNames {
  topic: string;
  subscription: string;
  deadLetterTopic: string;
  deadLetterSubscription: string;
}

export function checkEventTypeName(eventType: string): string | undefined {
  if (!EVENT_TYPE_PATTERN.test(eventType)) {
    return `event type "${eventType}" must be lower snake case ([a-z][a-z0-9]*(_[a-z0-9]+)*)`;
  }
  if (eventType.length > EVENT_TYPE_MAX_LENGTH) {
    return `event type "${eventType}" is longer than ${EVENT_TYPE_MAX_LENGTH} characters`;
  }
  if (eventType.startsWith('goog')) return `event type "${eventType}" must not start with "goog"`;
  return undefined;
}

export function checkPrefix(prefix: string): string | undefined {
  if (!PREFIX_PATTERN.test(prefix) || prefix.startsWith('goog')) {
    return `prefix "${prefix}" must match ${PREFIX_PATTERN.source} and not start with "goog"`;
  }
  return undefined;
}

export function resourceNames(prefix: string, eventType: string): ResourceNames {
  const topic = `${prefix}-${eventType}`;
  return {
    topic,
    subscription: `${topic}-consumer`,
    deadLetterTopic: `${topic}-deadletter`,
    deadLetterSubscription: `${topic}-deadletter-keep`,
  };
}

/** The topic of closed-window notices (one message per closed window, every type): `<prefix>-closed`. */
export function closedNoticeTopic(prefix: string): string {
  return `${prefix}-closed`;
}
