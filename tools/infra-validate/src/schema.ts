import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The part of a Terraform provider schema that `terraform validate` checks statically: per
 * resource and data source type, its arguments (type, required, documented values) and its
 * nested blocks (one or many, required). Computed-only attributes are not arguments and are
 * absent, so setting one is refused like any unknown name.
 */
export type ValueType = { kind: 'string' | 'number' | 'bool' | 'any' } | { kind: 'list' | 'map'; element: ValueType };

export interface AttributeSchema {
  type: ValueType;
  required: boolean;
  /** The values the provider documents ("Possible values: [...]"), when it does. */
  values?: string[];
}

export interface NestedBlockSchema {
  /** `single`: at most one block (MaxItems 1); `list`: any number. */
  nesting: 'single' | 'list';
  required: boolean;
  block: BlockSchema;
}

export interface BlockSchema {
  attributes: Record<string, AttributeSchema>;
  blocks: Record<string, NestedBlockSchema>;
}

export interface ProviderSchema {
  /** e.g. registry.terraform.io/hashicorp/google */
  provider: string;
  version: string;
  /** Every resource and data source type the provider has, schema extracted or not. */
  resourceTypes: string[];
  dataSourceTypes: string[];
  /** Schemas of the types a configuration uses (extracting all 1,469 would be ~10 MB). */
  resources: Record<string, BlockSchema>;
  dataSources: Record<string, BlockSchema>;
  /** The `provider "<name>"` block. */
  providerConfig: BlockSchema;
}

/** The committed extract for the types infra/ uses (see main.ts); the jest tests read it. */
export const SCHEMA_FILE = join(__dirname, '..', 'google-provider-schema.json');

export function loadSchema(path: string = SCHEMA_FILE): ProviderSchema {
  return JSON.parse(readFileSync(path, 'utf8')) as ProviderSchema;
}

/** Two-space JSON with sorted keys, so a regenerated file diffs only where the schema changed. */
export function renderSchema(schema: ProviderSchema): string {
  return `${JSON.stringify(sortKeys(schema), null, 2)}\n`;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(entries.map(([k, v]) => [k, sortKeys(v)]));
  }
  return value;
}

export function describeType(type: ValueType): string {
  return type.kind === 'list' || type.kind === 'map' ? `${type.kind}(${describeType(type.element)})` : type.kind;
}
