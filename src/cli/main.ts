#!/usr/bin/env node
import { Command } from 'commander';
import { InbmError, resultOf } from '../core/result.js';
import { VERSION } from '../core/version.js';
import { convertInput } from './convert.js';
import { readInput } from './input.js';
import { validateInput } from './validate.js';

export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('inbm')
    .description('In-band manageability agent: firmware, OS, containers, configuration and power of an edge device')
    .version(VERSION)
    .option('--debug', 'print stack traces of errors')
    .option('--root <dir>', 'place every device path under DIR (also INBM_ROOT)')
    .option('--log-level <level>', 'trace, debug, info, warn, error')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('validate')
    .description('check INBM XML manifests or desired-state YAML/JSON files; prints one line of result JSON per file')
    .argument('<files...>', 'files to check, or - for stdin')
    .action(async (files: string[]) => {
      for (const file of files) {
        const result = await readInput(file).then(validateInput, resultOf);
        process.stdout.write(`${JSON.stringify(result)}\n`);
        if (result.status !== 200) code = 1;
      }
    });

  program
    .command('convert')
    .description('print the desired-state documents (YAML) a manifest becomes, or the query it asks')
    .argument('<file>', 'manifest or document file, or - for stdin')
    .option('--source <name>', 'source of intent recorded in the annotations', 'cli')
    .option('--request-id <id>', 'identity of one-shot operations (default: digest of the manifest)')
    .option('--secrets-dir <dir>', 'keep credentials found in the manifest here (mode 0600)')
    .action(async (file: string, opts: { source: string; requestId?: string; secretsDir?: string }) => {
      const yaml = await convertInput(await readInput(file), opts, (line) => process.stderr.write(`inbm: ${line}\n`));
      process.stdout.write(yaml);
    });

  const root = () => (program.opts().root as string | undefined) ?? process.env.INBM_ROOT;

  program
    .command('agent')
    .description('run the agent: watch the desired-state directory and reconcile until SIGTERM')
    .action(async () => {
      const { runAgent } = await import('./agent.js');
      code = await runAgent(root(), program.opts().logLevel);
    });

  program
    .command('status')
    .description('show what the agent reports, from its state files (no running agent needed)')
    .argument('[resource]', 'KIND/NAME')
    .option('--json', 'print JSON')
    .option('--watch', 'print again whenever it changes (Ctrl-C to stop)')
    .action(async (which: string | undefined, opts: { json?: boolean; watch?: boolean }) => {
      const { showStatus } = await import('./status.js');
      code = await showStatus(root(), which, opts.json ?? false, opts.watch ?? false);
    });

  program
    .command('apply')
    .description('drop a manifest or document into the desired-state directory (atomic rename)')
    .argument('<file>', 'manifest or document')
    .option('--wait', 'wait for the result, print its JSON, exit 0 only on 200')
    .action(async (file: string, opts: { wait?: boolean }) => {
      const { apply } = await import('./apply.js');
      code = await apply(root(), file, opts.wait ?? false);
    });

  program
    .command('plan')
    .description('show what the controller would do for each document and which gate blocks it, without acting')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { showPlan } = await import('./plan.js');
      code = await showPlan(root(), opts.json ?? false);
    });

  program
    .command('provision')
    .description('make the local Mosquitto broker: CA, client certificates, mosquitto.conf with TLS and an ACL per client')
    .option('--dir <dir>', 'where the files go (default <root>/etc/inbm/mqtt)')
    .option('--port <port>', 'TLS listener on 127.0.0.1', '8883')
    .option('--days <days>', 'certificate validity', '3650')
    .option('--broker-user <user>', 'user mosquitto runs as (owns the broker key)', 'mosquitto')
    .option('--mqtt5', 'print settings for MQTT 5 instead of 3.1.1')
    .option('--force', 'replace an existing CA and every certificate')
    .action(async (opts: { dir?: string; port: string; days: string; brokerUser: string; force?: boolean; mqtt5?: boolean }) => {
      const { runProvision } = await import('./provision.js');
      code = await runProvision(root(), opts);
    });

  // INBC-style verbs (get, set, append, remove, load, restart, shutdown, query) live in verbs.ts.
  const { registerVerbs } = await import('./verbs.js');
  registerVerbs(program, root, (c) => {
    code = c;
  });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) return e.exitCode ?? 1;
    if (program.opts().debug || argv.includes('--debug')) process.stderr.write(`${(err as Error).stack}\n`);
    if (err instanceof InbmError) process.stderr.write(`${JSON.stringify(resultOf(err))}\n`);
    else process.stderr.write(`inbm: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // The agent's handles (watchers, timers) are closed by then; a CLI verb must not linger.
  if (!process.argv.includes('agent')) setImmediate(() => process.exit(code));
});
