/** One Pub/Sub message as a source hands it to staging, whichever pull mode read it. */
export interface InboundMessage {
  id: string;
  data: Buffer;
  attributes: Readonly<Record<string, string>>;
  publishTime?: Date;
  deliveryAttempt?: number;
  ack(): void;
  nack(): void;
}
