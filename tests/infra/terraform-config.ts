import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';

/**
 * The Terraform in infra/ as data: every *.tf parsed by hcl2json (HCL's own JSON form, in
 * which blocks are arrays and expressions are "${...}" strings). Tests compare expressions
 * as text; Terraform itself cannot run here (no providers can be downloaded).
 */
export type Hcl = Record<string, unknown>;

export interface TerraformConfig {
  /** `type.name` → resource body. */
  resources: Map<string, Hcl>;
  variables: Map<string, Hcl>;
  outputs: Map<string, Hcl>;
  /** Every locals block, merged. */
  locals: Hcl;
  /** The source text of every file, for checks that are about text. */
  text: Map<string, string>;
}

export const INFRA_DIR = 'infra';

export async function loadTerraform(dir: string = INFRA_DIR): Promise<TerraformConfig> {
  const config: TerraformConfig = {
    resources: new Map(),
    variables: new Map(),
    outputs: new Map(),
    locals: {},
    text: new Map(),
  };
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.tf'))
    .sort()) {
    const source = readFileSync(join(dir, file), 'utf8');
    config.text.set(file, source);
    const json = (await parse(file, source)) as Hcl;
    for (const [type, byName] of Object.entries((json.resource ?? {}) as Record<string, Record<string, Hcl[]>>)) {
      for (const [name, bodies] of Object.entries(byName)) {
        config.resources.set(`${type}.${name}`, only(bodies, `${type}.${name}`));
      }
    }
    for (const [name, bodies] of Object.entries((json.variable ?? {}) as Record<string, Hcl[]>)) {
      config.variables.set(name, only(bodies, `variable ${name}`));
    }
    for (const [name, bodies] of Object.entries((json.output ?? {}) as Record<string, Hcl[]>)) {
      config.outputs.set(name, only(bodies, `output ${name}`));
    }
    for (const block of (json.locals ?? []) as Hcl[]) Object.assign(config.locals, block);
  }
  return config;
}

function only(bodies: Hcl[], what: string): Hcl {
  if (bodies.length !== 1 || !bodies[0]) throw new Error(`${what} is declared ${bodies.length} times`);
  return bodies[0];
}

export function resource(config: TerraformConfig, address: string): Hcl {
  const r = config.resources.get(address);
  if (!r) throw new Error(`infra/ has no resource ${address}`);
  return r;
}

export function resourcesOfType(config: TerraformConfig, type: string): Array<[string, Hcl]> {
  return [...config.resources].filter(([address]) => address.startsWith(`${type}.`));
}

/** The single nested block `name` of `body` (hcl2json gives every block as an array). */
export function block(body: Hcl, name: string): Hcl {
  const value = body[name];
  if (!Array.isArray(value) || value.length !== 1) {
    throw new Error(`expected exactly one "${name}" block, found ${JSON.stringify(value)}`);
  }
  return value[0] as Hcl;
}

export function blocks(body: Hcl, name: string): Hcl[] {
  const value = body[name];
  return Array.isArray(value) ? (value as Hcl[]) : [];
}

/** The `content` of `dynamic "<name>"`, with its for_each. */
export function dynamicBlock(body: Hcl, name: string): { forEach: unknown; content: Hcl } {
  const dynamics = (body.dynamic ?? {}) as Hcl;
  const dyn = block(dynamics, name);
  return { forEach: dyn.for_each, content: block(dyn, 'content') };
}

/** Literal strings inside an expression such as `${toset(["a", "b"])}`. */
export function stringLiterals(expression: unknown): string[] {
  if (typeof expression !== 'string') return [];
  return [...expression.matchAll(/"([^"]*)"/g)].map((m) => m[1] ?? '');
}
