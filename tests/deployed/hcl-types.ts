import { parseTemplate, UnsupportedHcl, type Expr, type HclValue } from './hcl-parse';

/**
 * Terraform's conversion of a variable's value to its declared `type`, for the type
 * constructors infra/ uses: primitives, `any`, map/list/set, and object with optional()
 * attributes (a missing optional attribute becomes its default, else null).
 */
export function convertToType(value: HclValue, typeSource: unknown, where: string): HclValue {
  if (typeSource === undefined) return value;
  if (typeof typeSource !== 'string') throw new UnsupportedHcl(`type of ${where}`, '', 0);
  return convert(value, parseTemplate(typeSource), where);
}

function fail(where: string, why: string): never {
  throw new Error(`variable ${where}: ${why}`);
}

function convert(value: HclValue, type: Expr, where: string): HclValue {
  if (value === null) return null;
  if (type.kind === 'name') return primitive(value, type.name, where);
  if (type.kind !== 'call') throw new UnsupportedHcl(`type expression at ${where}`, '', 0);
  const [arg] = type.args;
  if (!arg) throw new UnsupportedHcl(`type ${type.fn}() at ${where}`, '', 0);
  switch (type.fn) {
    case 'list':
    case 'set':
      if (!Array.isArray(value)) fail(where, `expected a ${type.fn}`);
      return value.map((v, i) => convert(v, arg, `${where}[${i}]`));
    case 'map':
      if (typeof value !== 'object' || Array.isArray(value)) fail(where, 'expected a map');
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v, arg, `${where}.${k}`)]));
    case 'object':
      return objectValue(value, arg, where);
  }
  throw new UnsupportedHcl(`type ${type.fn}() at ${where}`, '', 0);
}

function primitive(value: HclValue, name: string, where: string): HclValue {
  if (name === 'any') return value;
  if (name === 'string' && ['string', 'number', 'boolean'].includes(typeof value)) return String(value);
  if (name === 'number' && typeof value === 'number') return value;
  if (name === 'number' && typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)))
    return Number(value);
  if (name === 'bool' && typeof value === 'boolean') return value;
  if (name === 'bool' && (value === 'true' || value === 'false')) return value === 'true';
  if (!['string', 'number', 'bool'].includes(name)) throw new UnsupportedHcl(`type ${name} at ${where}`, '', 0);
  return fail(where, `${JSON.stringify(value)} is not a ${name}`);
}

function objectValue(value: HclValue, shape: Expr, where: string): HclValue {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(where, 'expected an object');
  if (shape.kind !== 'object') throw new UnsupportedHcl(`object type at ${where}`, '', 0);
  const out: { [k: string]: HclValue } = {};
  const declared = new Set<string>();
  for (const [keyExpr, attrType] of shape.items) {
    if (keyExpr.kind !== 'literal' || typeof keyExpr.value !== 'string') {
      throw new UnsupportedHcl(`object type key at ${where}`, '', 0);
    }
    const key = keyExpr.value;
    declared.add(key);
    const optional = attrType.kind === 'call' && attrType.fn === 'optional';
    const inner = optional ? attrType.args[0]! : attrType;
    if (key in value) out[key] = convert(value[key]!, inner, `${where}.${key}`);
    else if (!optional) fail(where, `attribute ${key} is required`);
    else {
      const dflt = attrType.args[1];
      if (dflt && dflt.kind !== 'literal') throw new UnsupportedHcl(`optional() default at ${where}`, '', 0);
      out[key] = dflt ? dflt.value : null;
    }
  }
  // Terraform drops attributes the type does not declare.
  return Object.fromEntries(Object.entries(out).filter(([k]) => declared.has(k)));
}
