import { valueProblems } from './check-value';
import type { HclBlock, HclBody } from './hcl-shape';
import type { BlockSchema, NestedBlockSchema } from './schema';

/**
 * A body against its block schema, as `terraform validate` does: every argument and block
 * is one the schema has, an argument is written as an argument and a block as a block,
 * required ones are present, one-only blocks appear at most once, and literal values fit.
 */
export interface Finding {
  line: number;
  /** Block path inside the resource, e.g. `template.containers.liveness_probe`. */
  path: string;
  message: string;
}

/** Terraform's own arguments and blocks, allowed where the provider schema does not list them. */
export interface MetaArguments {
  attributes: readonly string[];
  blocks: readonly string[];
}

export const NO_META: MetaArguments = { attributes: [], blocks: [] };

export function checkBody(body: HclBody, schema: BlockSchema, path: string, meta: MetaArguments): Finding[] {
  const findings: Finding[] = [];
  const at = (line: number, message: string) => findings.push({ line, path, message });
  for (const attribute of body.attributes) {
    if (meta.attributes.includes(attribute.name)) continue;
    const known = schema.attributes[attribute.name];
    if (known) {
      for (const problem of valueProblems(attribute.expression, known))
        at(attribute.line, `${attribute.name}: ${problem}`);
    } else if (schema.blocks[attribute.name]) {
      at(
        attribute.line,
        `"${attribute.name}" is a block: write ${attribute.name} { ... }, not ${attribute.name} = ...`,
      );
    } else {
      at(attribute.line, `unknown argument "${attribute.name}"${suggestion(attribute.name, schema)}`);
    }
  }
  const counts = new Map<string, { static: number; dynamic: number }>();
  for (const block of body.blocks) {
    if (meta.blocks.includes(block.type)) continue;
    const name = block.type === 'dynamic' ? (block.labels[0] ?? '') : block.type;
    const nested = schema.blocks[name];
    if (!nested) {
      at(block.line, unknownBlock(name, block, schema));
      continue;
    }
    const count = counts.get(name) ?? { static: 0, dynamic: 0 };
    counts.set(name, count);
    if (block.type === 'dynamic') {
      count.dynamic++;
      findings.push(...checkDynamic(block, nested, join(path, name)));
    } else {
      count.static++;
      if (block.labels.length > 0) at(block.line, `block "${name}" takes no labels`);
      findings.push(...checkBody(block.body, nested.block, join(path, name), NO_META));
    }
  }
  findings.push(...missing(body, schema, counts, path));
  return findings;
}

function missing(
  body: HclBody,
  schema: BlockSchema,
  counts: Map<string, { static: number; dynamic: number }>,
  path: string,
): Finding[] {
  const findings: Finding[] = [];
  const line = body.attributes[0]?.line ?? body.blocks[0]?.line ?? 0;
  const set = new Set(body.attributes.map((a) => a.name));
  for (const [name, attribute] of Object.entries(schema.attributes)) {
    if (attribute.required && !set.has(name))
      findings.push({ line, path, message: `missing required argument "${name}"` });
  }
  for (const [name, nested] of Object.entries(schema.blocks)) {
    const count = counts.get(name) ?? { static: 0, dynamic: 0 };
    if (nested.required && count.static + count.dynamic === 0) {
      findings.push({ line, path, message: `missing required block "${name}"` });
    }
    if (nested.nesting === 'single' && count.static > 1) {
      findings.push({ line, path, message: `at most one "${name}" block is allowed, found ${count.static}` });
    }
  }
  return findings;
}

/** `dynamic "name" { for_each = ...; iterator = ...; content { ... } }`. */
function checkDynamic(block: HclBlock, nested: NestedBlockSchema, path: string): Finding[] {
  const findings: Finding[] = [];
  const names = block.body.attributes.map((a) => a.name);
  for (const name of names.filter((n) => !['for_each', 'iterator', 'labels'].includes(n))) {
    findings.push({ line: block.line, path, message: `unknown argument "${name}" in a dynamic block` });
  }
  if (!names.includes('for_each')) findings.push({ line: block.line, path, message: 'dynamic block without for_each' });
  const contents = block.body.blocks.filter((b) => b.type === 'content');
  if (contents.length !== 1 || block.body.blocks.length !== 1) {
    findings.push({ line: block.line, path, message: 'a dynamic block needs exactly one content block and no other' });
  }
  for (const content of contents) findings.push(...checkBody(content.body, nested.block, path, NO_META));
  return findings;
}

function unknownBlock(name: string, block: HclBlock, schema: BlockSchema): string {
  if (schema.attributes[name]) {
    return block.type === 'dynamic'
      ? `"${name}" is an argument, not a block: it cannot be generated with dynamic`
      : `"${name}" is an argument: write ${name} = ..., not ${name} { ... }`;
  }
  return `unknown block "${name}"${suggestion(name, schema)}`;
}

function join(path: string, name: string): string {
  return path ? `${path}.${name}` : name;
}

/** The closest known name, when it is a likely typo (edit distance at most 3). */
export function suggestion(name: string, schema: BlockSchema): string {
  const candidates = [...Object.keys(schema.attributes), ...Object.keys(schema.blocks)];
  return closest(name, candidates);
}

export function closest(name: string, candidates: readonly string[]): string {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance <= 3 && (!best || distance < best.distance)) best = { name: candidate, distance };
  }
  return best ? ` (did you mean "${best.name}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
