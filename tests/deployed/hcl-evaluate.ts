import { isDeepStrictEqual } from 'node:util';
import { parseTemplate, UnsupportedHcl, type Expr, type HclValue } from './hcl-parse';

/**
 * Evaluates parsed HCL expressions the way Terraform would for the subset infra/ uses:
 * literals, templates, `var.*`, `local.*`, attributes of resources set in their
 * configuration, for expressions, conditionals, operators and the functions below.
 *
 * Two kinds of failure: HclError is what Terraform itself reports for the expression
 * (a missing key, a wrong type) and what `try()`/`can()` catch; UnsupportedHcl is this
 * evaluator not knowing something, which nothing catches.
 */
export class HclError extends Error {}

export interface HclScope {
  variable(name: string): HclValue;
  local(name: string): HclValue;
  /** An attribute of `type.name` as its configuration sets it. */
  resourceAttribute(type: string, name: string, attribute: string): HclValue;
}

type Object_ = { [key: string]: HclValue };
type Step = { attribute: string } | { index: Expr };

/** Roots that are not resources; the evaluator has no value for any of them. */
const UNSUPPORTED_ROOTS = new Set(['data', 'module', 'path', 'terraform', 'self', 'each', 'count']);

const isObject = (v: HclValue): v is Object_ => typeof v === 'object' && v !== null && !Array.isArray(v);

function list(v: HclValue, fn: string): HclValue[] {
  if (!Array.isArray(v)) throw new HclError(`${fn}: expected a list, got ${JSON.stringify(v)}`);
  return v;
}

function object(v: HclValue, fn: string): Object_ {
  if (!isObject(v)) throw new HclError(`${fn}: expected a map or object, got ${JSON.stringify(v)}`);
  return v;
}

/** Terraform's string conversion of a primitive; collections and null have none. */
export function asString(v: HclValue, where: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new HclError(`${where}: cannot use ${JSON.stringify(v)} as a string`);
}

function asNumber(v: HclValue, where: string): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || Number.isNaN(n)) throw new HclError(`${where}: ${JSON.stringify(v)} is not a number`);
  return n;
}

function asBool(v: HclValue, where: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new HclError(`${where}: ${JSON.stringify(v)} is not a bool`);
}

/** A value as hcl2json gives it: strings are templates, collections are walked. */
export function evaluateJson(value: unknown, scope: HclScope): HclValue {
  if (typeof value === 'string') return evaluate(parseTemplate(value), scope, new Map());
  if (Array.isArray(value)) return value.map((v) => evaluateJson(v, scope));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, evaluateJson(v, scope)]));
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  throw new UnsupportedHcl(`value ${String(value)}`, '', 0);
}

type Bound = Map<string, HclValue>;

export function evaluate(e: Expr, scope: HclScope, bound: Bound): HclValue {
  const ev = (x: Expr): HclValue => evaluate(x, scope, bound);
  switch (e.kind) {
    case 'literal':
      return e.value;
    case 'template':
      return e.parts.map((p) => (typeof p === 'string' ? p : asString(ev(p), 'template'))).join('');
    case 'name':
    case 'attribute':
    case 'index':
      return traverse(e, scope, bound);
    case 'call':
      return call(e.fn, e.args, scope, bound);
    case 'tuple':
      return e.items.map(ev);
    case 'object': {
      const out: Object_ = {};
      for (const [k, v] of e.items) out[asString(ev(k), 'object key')] = ev(v);
      return out;
    }
    case 'for':
      return forExpression(e, scope, bound);
    case 'conditional':
      return asBool(ev(e.test), 'condition') ? ev(e.then) : ev(e.otherwise);
    case 'unary': {
      const v = ev(e.operand);
      return e.op === '!' ? !asBool(v, '!') : -asNumber(v, '-');
    }
    case 'binary':
      return binary(e.op, ev(e.left), ev(e.right));
  }
}

function binary(op: string, l: HclValue, r: HclValue): HclValue {
  switch (op) {
    case '==':
      return isDeepStrictEqual(l, r);
    case '!=':
      return !isDeepStrictEqual(l, r);
    case '&&':
      return asBool(l, op) && asBool(r, op);
    case '||':
      return asBool(l, op) || asBool(r, op);
  }
  const [a, b] = [asNumber(l, op), asNumber(r, op)];
  const result: Record<string, () => HclValue> = {
    '<': () => a < b,
    '>': () => a > b,
    '<=': () => a <= b,
    '>=': () => a >= b,
    '+': () => a + b,
    '-': () => a - b,
    '*': () => a * b,
    '/': () => a / b,
    '%': () => a % b,
  };
  return result[op]!();
}

function forExpression(e: Extract<Expr, { kind: 'for' }>, scope: HclScope, bound: Bound): HclValue {
  const collection = evaluate(e.collection, scope, bound);
  let pairs: Array<[HclValue, HclValue]>;
  if (Array.isArray(collection)) pairs = collection.map((v, i) => [i, v]);
  else {
    const o = object(collection, 'for');
    pairs = Object.keys(o)
      .sort()
      .map((k) => [k, o[k]!]);
  }
  const tuple: HclValue[] = [];
  const out: Object_ = {};
  for (const [k, v] of pairs) {
    const inner = new Map(bound);
    if (e.keyVar !== undefined) inner.set(e.keyVar, k);
    inner.set(e.valueVar, v);
    if (e.filter && !asBool(evaluate(e.filter, scope, inner), 'for filter')) continue;
    const value = evaluate(e.value, scope, inner);
    if (!e.key) {
      tuple.push(value);
      continue;
    }
    const key = asString(evaluate(e.key, scope, inner), 'for key');
    if (key in out) throw new HclError(`for: duplicate key ${key}`);
    out[key] = value;
  }
  return e.key ? out : tuple;
}

/** `a.b[c].d`: the root decides where the first steps are looked up. */
function traverse(e: Expr, scope: HclScope, bound: Bound): HclValue {
  const steps: Step[] = [];
  let root = e;
  while (root.kind === 'attribute' || root.kind === 'index') {
    steps.unshift(root.kind === 'attribute' ? { attribute: root.name } : { index: root.key });
    root = root.target;
  }
  if (root.kind !== 'name') return applySteps(evaluate(root, scope, bound), steps, scope, bound);
  const name = root.name;
  if (bound.has(name)) return applySteps(bound.get(name)!, steps, scope, bound);
  const attr = (i: number): string => {
    const s = steps[i];
    if (!s || !('attribute' in s)) throw new UnsupportedHcl(`reference ${name} without attribute ${i + 1}`, '', 0);
    return s.attribute;
  };
  if (name === 'var') return applySteps(scope.variable(attr(0)), steps.slice(1), scope, bound);
  if (name === 'local') return applySteps(scope.local(attr(0)), steps.slice(1), scope, bound);
  if (UNSUPPORTED_ROOTS.has(name)) throw new UnsupportedHcl(`reference to ${name}.*`, '', 0);
  return applySteps(scope.resourceAttribute(name, attr(0), attr(1)), steps.slice(2), scope, bound);
}

function applySteps(value: HclValue, steps: readonly Step[], scope: HclScope, bound: Bound): HclValue {
  let v = value;
  for (const step of steps) {
    const key = 'attribute' in step ? step.attribute : evaluate(step.index, scope, bound);
    if (Array.isArray(v)) {
      const i = asNumber(key, 'index');
      if (!(i in v)) throw new HclError(`index ${i} out of range`);
      v = v[i]!;
    } else if (isObject(v)) {
      const k = asString(key, 'index');
      if (!(k in v)) throw new HclError(`no key or attribute ${JSON.stringify(k)}`);
      v = v[k]!;
    } else throw new HclError(`cannot index ${JSON.stringify(v)} with ${JSON.stringify(key)}`);
  }
  return v;
}

function succeeds(e: Expr, scope: HclScope, bound: Bound): { ok: true; value: HclValue } | { ok: false } {
  try {
    return { ok: true, value: evaluate(e, scope, bound) };
  } catch (err) {
    if (err instanceof HclError) return { ok: false };
    throw err;
  }
}

function call(fn: string, args: readonly Expr[], scope: HclScope, bound: Bound): HclValue {
  if (fn === 'try') {
    for (const a of args) {
      const r = succeeds(a, scope, bound);
      if (r.ok) return r.value;
    }
    throw new HclError('try: no argument succeeded');
  }
  if (fn === 'can') return succeeds(args[0]!, scope, bound).ok;
  const impl = FUNCTIONS[fn];
  if (!impl) throw new UnsupportedHcl(`function ${fn}()`, '', 0);
  return impl(args.map((a) => evaluate(a, scope, bound)));
}

const sortedStrings = (v: HclValue[], fn: string): string[] => v.map((x) => asString(x, fn)).sort();

/** Terraform's functions, for the arguments infra/ passes them. */
const FUNCTIONS: Record<string, (a: HclValue[]) => HclValue> = {
  merge: (a) => Object.assign({}, ...a.filter((m) => m !== null).map((m) => object(m, 'merge'))) as Object_,
  join: ([sep, l]) =>
    list(l!, 'join')
      .map((x) => asString(x, 'join'))
      .join(asString(sep!, 'join')),
  sort: ([l]) => sortedStrings(list(l!, 'sort'), 'sort'),
  keys: ([m]) => Object.keys(object(m!, 'keys')).sort(),
  values: ([m]) => {
    const o = object(m!, 'values');
    return Object.keys(o)
      .sort()
      .map((k) => o[k]!);
  },
  coalesce: (a) => {
    const v = a.find((x) => x !== null && x !== '');
    if (v === undefined) throw new HclError('coalesce: no non-null argument');
    return v;
  },
  concat: (a) => a.flatMap((l) => list(l, 'concat')),
  flatten: ([l]) => (list(l!, 'flatten') as HclValue[]).flat(Infinity as 1) as HclValue[],
  length: ([v]) =>
    typeof v === 'string' ? v.length : Array.isArray(v) ? v.length : Object.keys(object(v!, 'length')).length,
  contains: ([l, v]) => list(l!, 'contains').some((x) => isDeepStrictEqual(x, v)),
  alltrue: ([l]) => list(l!, 'alltrue').every((x) => asBool(x, 'alltrue')),
  anytrue: ([l]) => list(l!, 'anytrue').some((x) => asBool(x, 'anytrue')),
  toset: ([l]) => [...new Set(sortedStrings(list(l!, 'toset'), 'toset'))],
  tostring: ([v]) => (v === null ? null : asString(v!, 'tostring')),
  tonumber: ([v]) => (v === null ? null : asNumber(v!, 'tonumber')),
  lower: ([s]) => asString(s!, 'lower').toLowerCase(),
  trimsuffix: ([s, x]) => {
    const [str, suffix] = [asString(s!, 'trimsuffix'), asString(x!, 'trimsuffix')];
    return suffix !== '' && str.endsWith(suffix) ? str.slice(0, -suffix.length) : str;
  },
  trimprefix: ([s, x]) => {
    const [str, prefix] = [asString(s!, 'trimprefix'), asString(x!, 'trimprefix')];
    return str.startsWith(prefix) ? str.slice(prefix.length) : str;
  },
  max: (a) => Math.max(...a.map((x) => asNumber(x, 'max'))),
  min: (a) => Math.min(...a.map((x) => asNumber(x, 'min'))),
  ceil: ([x]) => Math.ceil(asNumber(x!, 'ceil')),
  floor: ([x]) => Math.floor(asNumber(x!, 'floor')),
  one: ([l]) => {
    const items = list(l!, 'one');
    if (items.length > 1) throw new HclError('one: more than one element');
    return items[0] ?? null;
  },
  upper: ([s]) => asString(s!, 'upper').toUpperCase(),
  startswith: ([s, p]) => asString(s!, 'startswith').startsWith(asString(p!, 'startswith')),
  endswith: ([s, p]) => asString(s!, 'endswith').endsWith(asString(p!, 'endswith')),
  substr: ([s, o, n]) => {
    const str = asString(s!, 'substr');
    const len = asNumber(n!, 'substr');
    return str.substr(asNumber(o!, 'substr'), len < 0 ? undefined : len);
  },
  // RE2 and JavaScript agree on the simple patterns infra/ uses (anchors, classes, repeats).
  regex: ([p, s]) => {
    const m = new RegExp(asString(p!, 'regex')).exec(asString(s!, 'regex'));
    if (!m) throw new HclError('regex: no match');
    return m[0];
  },
  replace: ([s, from, to]) => {
    const [str, f, t] = [asString(s!, 'replace'), asString(from!, 'replace'), asString(to!, 'replace')];
    return f.length > 1 && f.startsWith('/') && f.endsWith('/')
      ? str.replace(new RegExp(f.slice(1, -1), 'g'), t)
      : str.split(f).join(t);
  },
};
