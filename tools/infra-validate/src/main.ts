import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractSchema, readProviderPackage } from './extract';
import { SCHEMA_FILE, loadSchema, renderSchema, type ProviderSchema } from './schema';
import { usedTypes, validateDirectory } from './validate';

/**
 * node tools/infra-validate/dist/main.js [--provider <package dir>] [--write-schema] <infra dir>
 *
 * With --provider (what `make infra-validate` passes): extracts the schema of the types the
 * directory uses from the installed @cdktf/provider-google, checks that the committed extract
 * (SCHEMA_FILE, which the jest tests read) is the same, or rewrites it with --write-schema,
 * then validates. Without: validates against the committed extract.
 */

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i < 0 ? false : args.splice(i, 1).length > 0;
  };
  const option = (name: string) => {
    const i = args.indexOf(name);
    return i < 0 ? undefined : args.splice(i, 2)[1];
  };
  const write = flag('--write-schema');
  const providerDir = option('--provider');
  const dir = args[0] ?? 'infra';

  let schema: ProviderSchema;
  if (providerDir) {
    const started = Date.now();
    schema = extractSchema(readProviderPackage(providerDir), usedTypes(dir));
    const rendered = renderSchema(schema);
    const committed = existsSync(SCHEMA_FILE) ? readFileSync(SCHEMA_FILE, 'utf8') : '';
    console.log(`schema of ${schema.provider} ${schema.version} read in ${Date.now() - started} ms`);
    if (write) {
      if (rendered !== committed) writeFileSync(SCHEMA_FILE, rendered);
      console.log(rendered === committed ? `${SCHEMA_FILE} is current` : `wrote ${SCHEMA_FILE}`);
    } else if (rendered !== committed) {
      console.error(`${SCHEMA_FILE} is not the extract of the types ${dir}/ uses: run make infra-schema`);
      return 1;
    }
  } else {
    schema = loadSchema(SCHEMA_FILE);
  }

  const problems = await validateDirectory(dir, schema);
  for (const p of problems)
    console.error(`${p.file ? `${join(dir, p.file)}:${p.line}` : dir}: ${p.where}: ${p.message}`);
  if (problems.length > 0) return 1;
  const types = Object.keys(schema.resources).length + Object.keys(schema.dataSources).length;
  console.log(`${dir}/ is valid against ${schema.provider} ${schema.version} (${types} types checked)`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(2);
  },
);
