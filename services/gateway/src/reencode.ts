import type { EventTypeSchemas, SchemaRegistry, SchemaVersion } from '@hourglass/schemas';

/**
 * Types published one event per message (HOURGLASS_UNBUNDLED_TYPES) have a Pub/Sub topic schema
 * that validates every message against its revisions, which are the newest version only (as
 * provisioned by infra/pubsub.tf). An event a client wrote with an older version would be
 * refused by the topic, and with it the whole publish request and every other event batched in
 * it, retried until their deadline. So such an event is resolved to the newest version (Avro
 * schema resolution: defaults fill the fields the older version lacks) and encoded anew.
 */
export class NewestVersionEncoder {
  private readonly types = new Map<string, EventTypeSchemas>();

  constructor(registry: SchemaRegistry, unbundledTypes: Iterable<string>) {
    for (const t of unbundledTypes) this.types.set(t, registry.get(t));
  }

  /** True when no type needs it (the bundler then skips the check). */
  get empty(): boolean {
    return this.types.size === 0;
  }

  /** The newest version and the datum re-encoded with it; undefined when `writer` needs nothing. */
  toNewest(writer: SchemaVersion, datum: Buffer): { writer: SchemaVersion; datum: Buffer } | undefined {
    const schemas = this.types.get(writer.eventType);
    if (!schemas || schemas.latest.fingerprint === writer.fingerprint) return undefined;
    const latest = schemas.latest;
    const value: unknown = latest.type.fromBuffer(datum, schemas.resolverFor(writer));
    return { writer: latest, datum: latest.type.toBuffer(value) };
  }
}
