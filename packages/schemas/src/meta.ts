import avro from 'avsc';

/** The shared record every event starts with; the gateway fills it. */
export interface EventMeta {
  event_id: string;
  gateway_ts: number;
  client_ts: number | null;
  gateway_id: string;
}

export interface EventRecord {
  meta: EventMeta;
  [field: string]: unknown;
}

export const META_FIELD = 'meta';
export const META_RECORD_NAME = 'hourglass.EventMeta';

/** The canonical meta schema; every version of every type must embed exactly this. */
export const META_SCHEMA = {
  type: 'record',
  name: 'EventMeta',
  namespace: 'hourglass',
  fields: [
    { name: 'event_id', type: { type: 'string', logicalType: 'uuid' } },
    { name: 'gateway_ts', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'client_ts', type: ['null', { type: 'long', logicalType: 'timestamp-millis' }], default: null },
    { name: 'gateway_id', type: 'string' },
  ],
} as const;

export const metaType = avro.Type.forSchema(META_SCHEMA as unknown as avro.Schema);
