import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { checkBody, closest, type MetaArguments } from './check-body';
import { parseShape, type HclBlock, type HclBody } from './hcl-shape';
import type { ProviderSchema } from './schema';

/**
 * An offline `terraform validate` for one provider: every `resource`, `data` and `provider`
 * block of a directory's *.tf against the provider's schema, and the configuration's version
 * constraint against the version that schema describes.
 */
export interface Problem {
  file: string;
  line: number;
  /** `google_cloud_run_v2_service.consumer template.containers`, or the top-level block. */
  where: string;
  message: string;
}

const RESOURCE_META: MetaArguments = {
  attributes: ['count', 'for_each', 'depends_on', 'provider'],
  blocks: ['lifecycle', 'provisioner', 'connection'],
};
const DATA_META: MetaArguments = { attributes: ['count', 'for_each', 'depends_on', 'provider'], blocks: ['lifecycle'] };
const PROVIDER_META: MetaArguments = { attributes: ['alias'], blocks: [] };

export function terraformFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.tf'))
    .sort();
}

export async function validateDirectory(dir: string, schema: ProviderSchema): Promise<Problem[]> {
  const problems: Problem[] = [];
  let pinned = false;
  for (const file of terraformFiles(dir)) {
    const result = await validateFile(file, readFileSync(join(dir, file), 'utf8'), schema);
    problems.push(...result.problems);
    pinned ||= result.pinned;
  }
  if (!pinned) {
    problems.push({
      file: '',
      line: 0,
      where: 'terraform',
      message: `no required_providers entry pins ${shortName(schema)} to ${schema.version}`,
    });
  }
  return problems;
}

/** Resource and data source types a directory uses: the schemas the check needs. */
export function usedTypes(dir: string): { resources: string[]; dataSources: string[] } {
  const used = { resources: new Set<string>(), dataSources: new Set<string>() };
  for (const file of terraformFiles(dir)) {
    for (const block of parseShape(readFileSync(join(dir, file), 'utf8')).blocks) {
      const type = block.labels[0];
      if (type && block.type === 'resource') used.resources.add(type);
      if (type && block.type === 'data') used.dataSources.add(type);
    }
  }
  return { resources: [...used.resources].sort(), dataSources: [...used.dataSources].sort() };
}

export async function validateFile(
  file: string,
  source: string,
  schema: ProviderSchema,
): Promise<{ problems: Problem[]; pinned: boolean }> {
  try {
    await parse(file, source);
  } catch (e) {
    return { problems: [{ file, line: 0, where: file, message: (e as Error).message }], pinned: false };
  }
  const problems: Problem[] = [];
  let pinned = false;
  for (const block of parseShape(source).blocks) {
    const where = [block.type, ...block.labels].join(' ');
    const findings = (() => {
      switch (block.type) {
        case 'resource':
          return checkTyped(block, schema.resourceTypes, schema.resources, RESOURCE_META, 'resource');
        case 'data':
          return checkTyped(block, schema.dataSourceTypes, schema.dataSources, DATA_META, 'data source');
        case 'provider':
          return block.labels[0] === shortName(schema)
            ? checkBody(block.body, schema.providerConfig, '', PROVIDER_META)
            : [];
        case 'terraform': {
          const pin = versionPin(block.body, schema);
          pinned ||= pin.pinned;
          return pin.findings;
        }
        default:
          return [];
      }
    })();
    for (const f of findings) {
      const address = block.type === 'resource' || block.type === 'data' ? block.labels.join('.') : where;
      problems.push({ file, line: f.line, where: f.path ? `${address} ${f.path}` : address, message: f.message });
    }
  }
  return { problems, pinned };
}

function checkTyped(
  block: HclBlock,
  known: readonly string[],
  schemas: ProviderSchema['resources'],
  meta: MetaArguments,
  what: string,
) {
  const type = block.labels[0] ?? '';
  if (!known.includes(type)) {
    return [{ line: block.line, path: '', message: `unknown ${what} type "${type}"${closest(type, known)}` }];
  }
  const schema = schemas[type];
  if (!schema) {
    const fix = 'run `make infra-schema` to extract it';
    return [{ line: block.line, path: '', message: `the schema of ${what} "${type}" is not extracted: ${fix}` }];
  }
  return checkBody(block.body, schema, '', meta);
}

function shortName(schema: ProviderSchema): string {
  return schema.provider.split('/').pop() ?? schema.provider;
}

/** `required_providers { google = { source = "hashicorp/google", version = "6.50.0" } }`. */
function versionPin(body: HclBody, schema: ProviderSchema) {
  const name = shortName(schema);
  const findings = [];
  let pinned = false;
  for (const required of body.blocks.filter((b) => b.type === 'required_providers')) {
    for (const entry of required.body.attributes.filter((a) => a.name === name)) {
      const version = /\bversion\s*=\s*"([^"]*)"/.exec(entry.expression)?.[1];
      // A wrong pin is reported here; only a missing one is reported by validateDirectory.
      pinned = true;
      if (version === undefined || version.replace(/^=\s*/, '') !== schema.version) {
        const message = `${name} must be pinned to exactly "${schema.version}", the version whose schema this check knows (found ${JSON.stringify(version ?? null)})`;
        findings.push({ line: entry.line, path: 'required_providers', message });
      }
    }
  }
  return { findings, pinned };
}
