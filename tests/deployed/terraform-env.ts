import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTerraform, type Hcl, type TerraformConfig } from '../infra/terraform-config';
import { UnsupportedHcl, type HclValue } from './hcl-parse';
import { HclError, asString, evaluateJson, type HclScope } from './hcl-evaluate';
import { convertToType } from './hcl-types';

/**
 * The environment Terraform gives the services: `local.gateway_env` and `local.consumer_env`
 * of infra/*.tf, evaluated with the variables an operator would pass. Inputs, in Terraform's
 * order: each variable's default, then the committed `*.auto.tfvars.json` (the generated event
 * types), then `tfvars` — the test's stand-in for an operator's terraform.tfvars, which is the
 * only way a test changes a value. Variable validations run as Terraform runs them.
 */
export type TfVars = Record<string, HclValue>;

export interface TerraformEvaluation {
  gateway: Record<string, string>;
  consumer: Record<string, string>;
  variable(name: string): HclValue;
  /** Every resource of `type`, as a function evaluating one of its arguments (nested blocks are lists of objects). */
  resourcesOfType(type: string): Array<(argument: string) => HclValue | undefined>;
}

export async function evaluateTerraform(infraDir: string, tfvars: TfVars): Promise<TerraformEvaluation> {
  const config = await loadTerraform(infraDir);
  const scope = new TerraformScope(config, variableValues(config, infraDir, tfvars));
  scope.validate();
  return {
    gateway: envMap(scope, 'gateway_env'),
    consumer: envMap(scope, 'consumer_env'),
    variable: (name) => scope.variable(name),
    resourcesOfType: (type) =>
      [...config.resources]
        .filter(([address]) => address.startsWith(`${type}.`))
        .map(([address, body]) => (argument: string) => {
          if ('count' in body || 'for_each' in body)
            throw new UnsupportedHcl(`${address} has count or for_each`, '', 0);
          return argument in body ? evaluateJson(body[argument], scope) : undefined;
        }),
  };
}

/** Terraform's `env { name, value }` blocks take each value as a string. */
function envMap(scope: TerraformScope, local: string): Record<string, string> {
  const value = scope.local(local);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`local.${local} is not a map: ${JSON.stringify(value)}`);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, asString(v, `local.${local}.${k}`)]));
}

function variableValues(config: TerraformConfig, infraDir: string, tfvars: TfVars): Map<string, HclValue> {
  const files = readdirSync(infraDir).sort();
  const hclVarFiles = files.filter((f) => f === 'terraform.tfvars' || f.endsWith('.auto.tfvars'));
  if (hclVarFiles.length > 0) {
    throw new Error(`deployed-config evaluator reads only JSON variable files; found ${hclVarFiles.join(', ')}`);
  }
  const given: TfVars = {};
  for (const f of files.filter((f) => f.endsWith('.auto.tfvars.json'))) {
    Object.assign(given, JSON.parse(readFileSync(join(infraDir, f), 'utf8')) as TfVars);
  }
  Object.assign(given, tfvars);
  for (const name of Object.keys(given)) {
    if (!config.variables.has(name)) throw new Error(`infra/ declares no variable "${name}"`);
  }
  const values = new Map<string, HclValue>();
  const unset: string[] = [];
  for (const [name, decl] of config.variables) {
    if (name in given) values.set(name, convertToType(given[name]!, decl.type, name));
    else if ('default' in decl) values.set(name, convertToType(decl.default as HclValue, decl.type, name));
    else unset.push(name);
  }
  if (unset.length > 0) throw new Error(`variables without a value (set them in the test tfvars): ${unset.join(', ')}`);
  return values;
}

class TerraformScope implements HclScope {
  private readonly locals = new Map<string, HclValue>();
  private readonly evaluating = new Set<string>();

  constructor(
    private readonly config: TerraformConfig,
    private readonly values: Map<string, HclValue>,
  ) {}

  variable(name: string): HclValue {
    if (!this.values.has(name)) throw new HclError(`no variable "${name}"`);
    return this.values.get(name)!;
  }

  local(name: string): HclValue {
    const cached = this.locals.get(name);
    if (cached !== undefined) return cached;
    if (!(name in this.config.locals)) throw new HclError(`no local "${name}"`);
    if (this.evaluating.has(name)) throw new Error(`local.${name} refers to itself`);
    this.evaluating.add(name);
    try {
      const value = evaluateJson(this.config.locals[name], this);
      this.locals.set(name, value);
      return value;
    } finally {
      this.evaluating.delete(name);
    }
  }

  /** Only attributes the configuration sets; computed ones (ids, urls) have no value here. */
  resourceAttribute(type: string, name: string, attribute: string): HclValue {
    const body = this.config.resources.get(`${type}.${name}`);
    if (!body) throw new HclError(`no resource ${type}.${name}`);
    if ('count' in body || 'for_each' in body) {
      throw new UnsupportedHcl(`reference to ${type}.${name}, which has count or for_each`, '', 0);
    }
    if (!(attribute in body)) {
      throw new UnsupportedHcl(`${type}.${name}.${attribute} (not set in its configuration)`, '', 0);
    }
    return evaluateJson(body[attribute], this);
  }

  /** Every variable's `validation` blocks, as `terraform plan` checks them. */
  validate(): void {
    for (const [name, decl] of this.config.variables) {
      for (const v of (decl.validation ?? []) as Hcl[]) {
        const ok = evaluateJson(v.condition, this);
        if (ok !== true) throw new Error(`variable ${name}: ${String(v.error_message)}`);
      }
    }
  }
}
