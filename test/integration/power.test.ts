/** A restart across a (simulated) reboot: the command runs once, the verdict comes after boot. */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { BIN } from '../bin.js';
import { until } from '../until.js';

function startAgent(root: string): { proc: ChildProcess; ready: Promise<void> } {
  const proc = spawn(process.execPath, [BIN, '--root', root, 'agent'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  proc.stderr!.on('data', (d) => (out += d));
  return { proc, ready: until('ready', async () => (out.includes('agent ready') ? true : undefined)).then(() => {}) };
}

async function stop(proc: ChildProcess): Promise<number | null> {
  proc.kill('SIGTERM');
  return new Promise((r) => proc.once('exit', (code) => r(code)));
}

it('restart: command once, agent killed and the machine "rebooted", verdict Reboot SUCCESSFUL', async () => {
  const root = await mkdtemp(join(tmpdir(), 'inbm-power-'));
  const log = join(root, 'reboots.log');
  const script = join(root, 'reboot.sh');
  await writeFile(script, `#!/bin/sh\necho reboot >> ${log}\n`);
  await chmod(script, 0o755);
  await mkdir(join(root, 'etc', 'inbm'), { recursive: true });
  await writeFile(join(root, 'etc', 'inbm', 'agent.yaml'), `commands:\n  reboot: [${script}]\nrebootGraceSeconds: 60\n`);

  const first = startAgent(root);
  await first.ready;
  const dir = join(root, 'var', 'lib', 'inbm', 'desired-state');
  await writeFile(join(dir, '.r.tmp'), '<manifest><type>cmd</type><cmd>restart</cmd></manifest>');
  await rename(join(dir, '.r.tmp'), join(dir, 'restart.xml'));
  const statusFile = join(root, 'var', 'lib', 'inbm', 'status', 'PowerAction', 'power.json');
  await until('issued', async () => (JSON.parse(await readFile(statusFile, 'utf8')).lastResult?.status === 200 ? true : undefined));
  first.proc.kill('SIGKILL'); // the machine goes down hard
  await new Promise((r) => first.proc.once('exit', r));

  // Same boot: a restarted agent must not run the command again.
  const same = startAgent(root);
  await same.ready;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await stop(same.proc), 0);
  assert.equal((await readFile(log, 'utf8')).trim().split('\n').length, 1);

  // New boot id: the verdict.
  await writeFile(join(root, 'proc', 'sys', 'kernel', 'random', 'boot_id'), 'a-new-boot\n');
  const after = startAgent(root);
  await after.ready;
  const status = await until('verdict', async () => {
    const s = JSON.parse(await readFile(statusFile, 'utf8'));
    return s.lastResult?.message === 'Reboot SUCCESSFUL.' ? s : undefined;
  });
  assert.equal(status.phase, 'Ready');
  assert.equal(await stop(after.proc), 0);
  assert.equal((await readFile(log, 'utf8')).trim().split('\n').length, 1, 'the reboot command ran exactly once');
  const results = JSON.parse(await readFile(join(root, 'var', 'lib', 'inbm', 'results.json'), 'utf8'));
  assert.deepEqual(
    results.map((r: { result: { message: string } }) => r.result.message),
    ['Restart Command Success', 'Reboot SUCCESSFUL.'],
  );
});
