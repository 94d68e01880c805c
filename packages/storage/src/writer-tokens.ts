import { randomUUID } from 'node:crypto';

/** Names whose ambiguous create is remembered at most: the oldest is forgotten first. */
const CAPACITY = 10_000;

/**
 * Writer tokens of creates that failed ambiguously (a timeout, retries run out): their write may
 * still land. A later create of the same name with the same bytes in this process reuses the
 * token, so when it meets that late write (412) the object's token says "ours" and the create
 * resolves true. Another writer's object, even with equal bytes, carries another token: false.
 */
export class WriterTokens {
  private readonly pending = new Map<string, { digest: string; writer: string }>();

  /** The token for a create of `key` with bytes of `digest`: an ambiguous earlier one's, or a fresh one. */
  tokenFor(key: string, digest: string): string {
    const prior = this.pending.get(key);
    return prior !== undefined && prior.digest === digest ? prior.writer : randomUUID();
  }

  /** The create of `key` failed without a known outcome: its write may land later. */
  remember(key: string, digest: string, writer: string): void {
    this.pending.delete(key);
    this.pending.set(key, { digest, writer });
    if (this.pending.size > CAPACITY) this.pending.delete(this.pending.keys().next().value as string);
  }

  /** The create of `key` has a known outcome: nothing to recognise later. */
  settle(key: string): void {
    this.pending.delete(key);
  }
}
