/** A real agent process on a temp root, as the integration tests drive it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { BIN } from '../bin.js';
import { until } from '../until.js';

export { BIN };

export interface Root {
  dir: string;
  state: string;
  desired: string;
  rebootLog: string;
}

/** A temp root whose reboot command logs its run and changes the boot id, as a real reboot would. */
export async function makeRoot(settings = '', rebootSeconds = 0): Promise<Root> {
  const dir = await mkdtemp(join(tmpdir(), 'inbm-it-'));
  roots.add(dir);
  const rebootLog = join(dir, 'reboots.log');
  const bootId = join(dir, 'proc', 'sys', 'kernel', 'random', 'boot_id');
  const script = join(dir, 'reboot.sh');
  await writeFile(
    script,
    `#!/bin/sh\nsleep ${rebootSeconds}\necho reboot >> ${rebootLog}\necho "boot-$$" > ${bootId}.new && mv ${bootId}.new ${bootId}\n`,
  );
  await chmod(script, 0o755);
  // The machine files the health gates read: enough memory and a default route.
  await mkdir(join(dir, 'proc', 'net'), { recursive: true });
  await writeFile(join(dir, 'proc', 'meminfo'), 'MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n');
  await writeFile(
    join(dir, 'proc', 'net', 'route'),
    'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n',
  );
  await mkdir(join(dir, 'etc', 'inbm'), { recursive: true });
  await writeFile(join(dir, 'etc', 'inbm', 'agent.yaml'), `commands:\n  reboot: [${script}]\n${settings}`);
  return { dir, state: join(dir, 'var', 'lib', 'inbm'), desired: join(dir, 'var', 'lib', 'inbm', 'desired-state'), rebootLog };
}

export interface Running {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Agents still running when a test file ends (a failed assertion) are killed, so the file can exit. */
const running = new Set<ChildProcess>();
const killAll = () => {
  for (const p of running) p.kill('SIGKILL');
};
// A failed test leaves its agent up, and its pipes would keep this file's process alive for ever.
// This hook runs before the file's own (which stop their agents gracefully), so it only arms an
// unref'd timer: it fires only if something still holds the process open a few seconds later.
after(() => {
  setTimeout(killAll, 5000).unref();
});
process.on('exit', () => {
  killAll();
  // Temp roots go with the test file that made them.
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
});
const roots = new Set<string>();

/** `ready: false` returns at once: for an agent meant to die (a crash point) before it logs ready. */
export async function startAgent(root: Root, env: Record<string, string> = {}, { ready = true } = {}): Promise<Running> {
  const proc = spawn(process.execPath, [BIN, '--root', root.dir, 'agent'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let out = '';
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.once('exit', (code, signal) => r({ code, signal })),
  );
  if (!ready) return { proc, output: () => out, exited };
  await Promise.race([
    until('agent ready', async () => (out.includes('agent ready') ? true : undefined)),
    exited.then(() => (out.includes('agent ready') ? true : Promise.reject(new Error(`agent exited early: ${out}`)))),
  ]);
  return { proc, output: () => out, exited };
}

export async function stopAgent(agent: Running): Promise<number | null> {
  agent.proc.kill('SIGTERM');
  return (await agent.exited).code;
}

export async function drop(root: Root, name: string, text: string): Promise<void> {
  await writeFile(join(root.desired, `.${name}.tmp`), text);
  await rename(join(root.desired, `.${name}.tmp`), join(root.desired, name));
}

/** Serves files (URL path → file on disk) on 127.0.0.1; any other path is 404. */
export async function serveFiles(files: ReadonlyMap<string, string>): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const f = files.get(req.url ?? '');
    if (f) void readFile(f).then((b) => res.end(b));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Adds a trusted repository to the configuration file under the root. */
export async function trustRepository(root: Root, url: string): Promise<void> {
  const conf = join(root.dir, 'etc', 'intel_manageability.conf');
  await writeFile(conf, (await readFile(conf, 'utf8')).replace('<trustedRepositories>', `<trustedRepositories>\n${url}`));
}
