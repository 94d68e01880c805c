import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AttributeSchema, BlockSchema, NestedBlockSchema, ProviderSchema, ValueType } from './schema';

/**
 * Reads a provider's schema from a prebuilt CDKTF provider package (@cdktf/provider-google):
 * its `.jsii` type assembly holds, per resource, a `<Name>Config` struct whose properties are
 * exactly the arguments and blocks (optional or not, typed), each documented with its
 * registry link (whose anchor is the Terraform name) and the provider's own description
 * ("Possible values: [...]", "<name> block."). Nothing of cdktf itself is loaded.
 */
interface JsiiDocs {
  summary?: string;
  remarks?: string;
}

type JsiiTypeRef =
  | { primitive: string }
  | { fqn: string }
  | { collection: { kind: 'array' | 'map'; elementtype: JsiiTypeRef } }
  | { union: { types: JsiiTypeRef[] } };

interface JsiiProperty {
  name: string;
  optional?: boolean;
  static?: boolean;
  docs?: JsiiDocs;
  type: JsiiTypeRef;
}

interface JsiiType {
  kind: string;
  datatype?: boolean;
  docs?: JsiiDocs;
  properties?: JsiiProperty[];
}

interface Assembly {
  types: Record<string, JsiiType>;
}

const RESOLVABLE = 'cdktf.IResolvable';

export interface ProviderPackage {
  provider: string;
  version: string;
  /** Terraform type name → fqn of its Config struct. */
  resources: Map<string, string>;
  dataSources: Map<string, string>;
  providerConfig: string;
  assembly: Assembly;
}

export function readProviderPackage(dir: string): ProviderPackage {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    cdktf?: { provider?: { name?: string; version?: string } };
  };
  const assembly = JSON.parse(readFileSync(join(dir, '.jsii'), 'utf8')) as Assembly;
  const resources = new Map<string, string>();
  const dataSources = new Map<string, string>();
  let providerConfig: string | undefined;
  for (const [fqn, type] of Object.entries(assembly.types)) {
    if (type.kind !== 'class') continue;
    const summary = type.docs?.summary ?? '';
    const link = /\/docs\/(resources|data-sources)\/\w+ (\w+)\}/.exec(summary);
    if (link?.[1] && link[2]) (link[1] === 'resources' ? resources : dataSources).set(link[2], `${fqn}Config`);
    else if (/\/docs \w+\}/.test(summary)) providerConfig = `${fqn}Config`;
  }
  const provider = pkg.cdktf?.provider;
  if (!provider?.name || !provider.version || !providerConfig) {
    throw new Error(`${dir} is not a prebuilt CDKTF provider package`);
  }
  return { provider: provider.name, version: provider.version, resources, dataSources, providerConfig, assembly };
}

/** The schema of the provider block and of the named types (unknown names are left out). */
export function extractSchema(
  pkg: ProviderPackage,
  wanted: { resources: Iterable<string>; dataSources: Iterable<string> },
): ProviderSchema {
  const pick = (all: Map<string, string>, names: Iterable<string>): Record<string, BlockSchema> => {
    const out: Record<string, BlockSchema> = {};
    for (const name of [...new Set(names)].sort()) {
      const fqn = all.get(name);
      if (fqn) out[name] = blockOf(pkg.assembly, fqn);
    }
    return out;
  };
  return {
    provider: pkg.provider,
    version: pkg.version,
    resourceTypes: [...pkg.resources.keys()].sort(),
    dataSourceTypes: [...pkg.dataSources.keys()].sort(),
    resources: pick(pkg.resources, wanted.resources),
    dataSources: pick(pkg.dataSources, wanted.dataSources),
    providerConfig: blockOf(pkg.assembly, pkg.providerConfig),
  };
}

function blockOf(assembly: Assembly, fqn: string): BlockSchema {
  const struct = assembly.types[fqn];
  if (!struct?.datatype) throw new Error(`${fqn} is not a struct in the assembly`);
  const block: BlockSchema = { attributes: {}, blocks: {} };
  for (const property of struct.properties ?? []) {
    if (property.static) continue;
    const name = terraformName(property);
    const required = property.optional !== true;
    const nested = structOf(assembly, property.type);
    if (nested) {
      block.blocks[name] = {
        nesting: nested.many ? 'list' : 'single',
        required,
        block: blockOf(assembly, nested.fqn),
      } satisfies NestedBlockSchema;
      continue;
    }
    const attribute: AttributeSchema = { type: valueType(property.type), required };
    const values = documentedValues(property.docs);
    if (values) attribute.values = values;
    block.attributes[name] = attribute;
  }
  return block;
}

/** The registry link's anchor is the Terraform name (`#period_seconds`); else snake_case. */
function terraformName(property: JsiiProperty): string {
  const text = `${property.docs?.summary ?? ''} ${property.docs?.remarks ?? ''}`;
  const anchor = /registry\.terraform\.io\/providers\/\S+#(\w+)\s/.exec(text)?.[1];
  return anchor ?? property.name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function documentedValues(docs: JsiiDocs | undefined): string[] | undefined {
  const text = `${docs?.summary ?? ''} ${docs?.remarks ?? ''}`;
  const list = /Possible values: \[([^\]]*)\]/.exec(text)?.[1];
  if (list === undefined) return undefined;
  try {
    const values = JSON.parse(`[${list}]`) as unknown[];
    return values.every((v) => typeof v === 'string') ? (values as string[]) : undefined;
  } catch {
    return undefined;
  }
}

/** `T | IResolvable` is how cdktf lets any typed value be an expression: it is just `T`. */
function withoutResolvable(ref: JsiiTypeRef): JsiiTypeRef {
  if (!('union' in ref)) return ref;
  const rest = ref.union.types.filter((t) => !('fqn' in t && t.fqn === RESOLVABLE));
  return rest.length === 1 && rest[0] ? withoutResolvable(rest[0]) : ref;
}

function structOf(assembly: Assembly, ref: JsiiTypeRef): { fqn: string; many: boolean } | undefined {
  const type = withoutResolvable(ref);
  const isStruct = (r: JsiiTypeRef): r is { fqn: string } => 'fqn' in r && assembly.types[r.fqn]?.datatype === true;
  if (isStruct(type)) return { fqn: type.fqn, many: false };
  if ('collection' in type && type.collection.kind === 'array') {
    const element = withoutResolvable(type.collection.elementtype);
    if (isStruct(element)) return { fqn: element.fqn, many: true };
  }
  return undefined;
}

function valueType(ref: JsiiTypeRef): ValueType {
  const type = withoutResolvable(ref);
  if ('primitive' in type) {
    if (type.primitive === 'string') return { kind: 'string' };
    if (type.primitive === 'number') return { kind: 'number' };
    if (type.primitive === 'boolean') return { kind: 'bool' };
    return { kind: 'any' };
  }
  if ('collection' in type) {
    return { kind: type.collection.kind === 'array' ? 'list' : 'map', element: valueType(type.collection.elementtype) };
  }
  return { kind: 'any' };
}
