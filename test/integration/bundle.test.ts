/**
 * The shipped bundle (dist/inbm.mjs) carries dockerode without ssh2 and gRPC (scripts/build.ts):
 * an engine reached over ssh:// is refused with a reason that says so, at the engine call,
 * instead of a crash or a hang; the agent itself keeps running.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { until } from '../until.js';
import { drop, makeRoot, startAgent, stopAgent } from './harness.js';

it('DOCKER_HOST=ssh://…: the document stalls naming what this build does not support; the agent stays up', async () => {
  const root = await makeRoot('resyncSeconds: 30\n');
  // Loopback port 1: nothing is ever sent, the ssh client is refused before any connection.
  const agent = await startAgent(root, { DOCKER_HOST: 'ssh://inbm@127.0.0.1:1' });
  try {
    await drop(
      root,
      'app.yaml',
      'apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: over-ssh}\nspec:\n  image: inbm-it/over-ssh\n  tag: "1"\n',
    );
    const status = await until('the resource answered', async () => {
      const s = JSON.parse(await readFile(join(root.state, 'status', 'ContainerImage', 'over-ssh.json'), 'utf8').catch(() => '{}')) as {
        phase?: string;
        conditions?: Array<{ message: string }>;
      };
      return s.phase && s.phase !== 'Pending' && s.phase !== 'Reconciling' ? s : undefined;
    });
    assert.equal(status.phase, 'Stalled');
    assert.match(JSON.stringify(status.conditions), /ssh2 is not supported by this build/);
    assert.equal(agent.proc.exitCode, null, 'the agent is still running');
  } finally {
    assert.equal(await stopAgent(agent), 0);
  }
});
