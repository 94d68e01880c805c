import type { Command } from 'commander';
import { Defaults } from '@hourglass/common';
import { SchemaRegistry, problemLine } from '@hourglass/schemas';

export function registerSchemaCommands(program: Command): void {
  const schemas = program.command('schemas').description('event schemas in schemas/');
  schemas
    .command('check')
    .description('check names, the meta field, version numbering and that every version resolves to the newest')
    .option('-d, --dir <dir>', 'schema directory', process.env.HOURGLASS_SCHEMAS_DIR ?? Defaults.schemasDir)
    .action((opts: { dir: string }) => {
      const { registry, problems } = SchemaRegistry.inspect(opts.dir);
      for (const p of problems) process.stderr.write(`${problemLine(p)}\n`);
      if (problems.length > 0) process.exit(1);
      for (const t of registry.eventTypes()) {
        const s = registry.get(t);
        process.stdout.write(`ok ${t} v1..v${s.latest.version} ${s.latest.fingerprint.slice(0, 16)}\n`);
      }
    });
}
