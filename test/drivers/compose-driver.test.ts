/**
 * ComposeDriver with a settable docker-compose executable: real scripts stand in for it, one that
 * records its arguments, one that fails, one that hangs (with a child of its own) past its time
 * limit and must be killed with its whole process group.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InbmError } from '../../src/core/result.js';
import { ComposeDriver, DEFAULT_COMPOSE_TIMEOUTS } from '../../src/drivers/compose.js';
import { until } from '../until.js';

let dir = '';
const stack = () => ({ dir, file: 'docker-compose.yml' });

async function script(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** Gone, or a zombie nobody reaped yet (PID 1 here need not reap orphans): either way not running. */
async function dead(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat === undefined || / [ZX] /.test(stat.slice(stat.lastIndexOf(')') + 1, stat.lastIndexOf(')') + 4));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inbm-compose-driver-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('ComposeDriver', () => {
  it('runs the executable with project, file and subcommand as separate arguments, in the stack directory', async () => {
    const exe = await script('record.sh', `printf '%s\\n' "$PWD" "$DOCKER_HOST" "$@" > ${dir}/argv`);
    const driver = new ComposeDriver({ executablePath: exe, socketPath: '/run/x.sock' });
    const saved = process.env.DOCKER_HOST;
    delete process.env.DOCKER_HOST;
    try {
      await driver.up(stack(), 'my-project');
    } finally {
      if (saved !== undefined) process.env.DOCKER_HOST = saved;
    }
    assert.deepEqual((await readFile(join(dir, 'argv'), 'utf8')).split('\n').filter(Boolean), [
      dir,
      'unix:///run/x.sock',
      '--ansi',
      'never',
      '-p',
      'my-project',
      '-f',
      'docker-compose.yml',
      'up',
      '--remove-orphans',
      '-d',
    ]);
  });

  it("a failure is a 400 with compose's last error line", async () => {
    const exe = await script('fail.sh', 'echo "Creating app ... done" >&2\necho "ERROR: manifest for x:1 not found" >&2\nexit 1');
    await assert.rejects(new ComposeDriver({ executablePath: exe }).pull(stack(), 'p'), (e: unknown) => {
      assert.ok(e instanceof InbmError);
      assert.equal(e.status, 400);
      assert.equal(e.reason, 'docker-compose pull failed: ERROR: manifest for x:1 not found');
      assert.equal(e.retryable, false);
      return true;
    });
  });

  it('a missing executable says docker-compose is not installed', async () => {
    await assert.rejects(new ComposeDriver({ executablePath: join(dir, 'nope') }).down(stack(), 'p'), /docker-compose is not installed/);
  });

  it('past its time limit: the process and its children are killed, 400 naming the subcommand and the limit', async () => {
    // Ignores SIGTERM, as a wedged compose might: only the SIGKILL after the grace time stops it.
    const exe = await script('hang.sh', `trap '' TERM\necho $$ > ${dir}/pid\nsleep 300 &\necho $! > ${dir}/child\nwait`);
    const driver = new ComposeDriver({ executablePath: exe, timeouts: { down: 500 }, killGraceMs: 200 });
    await assert.rejects(driver.down(stack(), 'p'), (e: unknown) => {
      assert.ok(e instanceof InbmError);
      assert.equal(e.status, 400);
      assert.equal(e.reason, 'docker-compose down timed out after 0.5 s and was stopped');
      return true;
    });
    const pid = Number(await readFile(join(dir, 'pid'), 'utf8'));
    const child = Number(await readFile(join(dir, 'child'), 'utf8'));
    assert.ok(await dead(pid), 'the script is gone');
    await until('the child killed', async () => ((await dead(child)) ? true : undefined));
  });

  it('the default limits are generous: 10 min for up and pull, 2 min for down', () => {
    assert.equal(DEFAULT_COMPOSE_TIMEOUTS.up, 600_000);
    assert.equal(DEFAULT_COMPOSE_TIMEOUTS.pull, 600_000);
    assert.equal(DEFAULT_COMPOSE_TIMEOUTS.down, 120_000);
  });
});
