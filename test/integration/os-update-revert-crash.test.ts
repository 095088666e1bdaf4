/**
 * SOTA's other journalled paths under SIGKILL, as os-update-crash.test.ts does for a success:
 * the rollback after an unhealthy boot (verdict, revert, revert-reboot, complete) and the record
 * of a download-only. Each kill is followed by a restart; each case must converge to the one
 * answer the path gives, with the reboots and rollback commands it needs and no more.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sotaMount } from '../drivers/apt-root.js';
import { drop, type Running, startAgent } from './harness.js';
import { type Device, device, done, phase, reboot, reboots, record, results, snapshotsOf, waitFor } from './sota-device.js';

const mnt = sotaMount();
const KEY = 'OSUpdate/os-update';
const REVERTING = /^FAILED INSTALL: System has not been properly updated; reverting\. services: inactive: docker/;
const sota = (mode: string) =>
  '<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>sota</type><repo>remote</repo></header>' +
  `<type><sota><cmd logtofile="N">update</cmd><mode>${mode}</mode><package_list>inbm-demo</package_list></sota></type></ota></manifest>`;
const POINTS = ['before', 'started', 'ran', 'done'];
const points = (steps: string[]) => [...steps.flatMap((s) => POINTS.map((p) => `${s}:${p}`)), 'complete'];

async function killed(agent: Running, point: string): Promise<void> {
  const { signal } = await agent.exited;
  assert.equal(signal, 'SIGKILL', `the agent died at ${point}`);
}

const rollbacks = async (d: Device) => (await readFile(d.rollbacks, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
const journalStep = async (d: Device, step: string) =>
  (
    JSON.parse(await readFile(join(d.root.state, 'journal', 'OSUpdate-os-update.json'), 'utf8')) as {
      steps: Record<string, { state: string }>;
    }
  ).steps[step]?.state;

describe('OS update rolled back after an unhealthy boot: SIGKILL at every step of the rollback converges', { concurrency: 3 }, () => {
  for (const point of points(['verdict', 'revert', 'revert-reboot'])) {
    it(`killed at ${point}`, async (t) => {
      if (!mnt) return t.skip('needs root and the cached Debian root');
      // Killed with the reboot marked started but not run: the restart waits out the grace first.
      const d = await device(`sota-rcrash-${point.replace(':', '-')}`, { graceSeconds: point === 'revert-reboot:started' ? 6 : 120 });
      try {
        await d.apt.publish('2');
        d.agent = await startAgent(d.root);
        await drop(d.root, 'sota.xml', sota('full'));
        await waitFor('the update reboot', async () =>
          (await reboots(d)) === 1 && (await journalStep(d, 'reboot')) === 'done' ? true : undefined,
        );
        await writeFile(d.failing, 'docker\n'); // the update "broke" docker
        // The boot into the update, with the agent set to die at the point.
        await reboot(d, false, { INBM_CRASH_AT: `${KEY}:${point}` });
        await killed(d.agent!, point);
        d.agent = undefined;
        if ((await reboots(d)) < 2) {
          d.agent = await startAgent(d.root);
          await waitFor('the rollback reboot', async () =>
            (await reboots(d)) === 2 && (await journalStep(d, 'revert-reboot')) === 'done' ? true : undefined,
          );
        }
        // The boot into the staged snapshot.
        await reboot(d);
        const s = await phase(d, 'Failed', REVERTING);
        assert.equal(s.lastResult!.status, 400);
        assert.equal(d.apt.version(), '1', 'the snapshot runs: version 1 again');
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(await reboots(d), 2, 'one reboot into the update, one into the snapshot');
        // A kill after the rollback command ran and before its done mark runs it again: it only
        // stages the same snapshot for the next boot, so twice is harmless; otherwise once.
        assert.equal(await rollbacks(d), point === 'revert:ran' ? 2 : 1, 'rollback command runs');
        // The answer before the reboot, then the verdict once: none twice.
        const history = await results(d);
        assert.equal(history.length, 2, JSON.stringify(history));
        assert.equal(history[0], '200 SOTA command status: SUCCESSFUL');
        assert.match(history[1]!, /^400 FAILED INSTALL: System has not been properly updated; reverting\./);
        assert.equal((await record(d)).Status, 'FAIL');
      } finally {
        await done(d);
      }
    });
  }
});

describe('OS update download-only: SIGKILL at its record step converges', { concurrency: 3 }, () => {
  for (const point of points(['apt-install', 'record'])) {
    it(`killed at ${point}`, async (t) => {
      if (!mnt) return t.skip('needs root and the cached Debian root');
      const d = await device(`sota-dlcrash-${point.replace(':', '-')}`);
      try {
        await d.apt.publish('2');
        d.agent = await startAgent(d.root, { INBM_CRASH_AT: `${KEY}:${point}` });
        await drop(d.root, 'sota.xml', sota('download-only'));
        await killed(d.agent, point);
        d.agent = await startAgent(d.root);
        const s = await phase(d, 'Ready', /^SOTA command status: SUCCESSFUL/);
        assert.equal(s.lastResult!.status, 200);
        assert.equal(d.apt.version(), '1', 'downloaded, not installed');
        assert.equal(await reboots(d), 0);
        assert.deepEqual(snapshotsOf(d), []);
        assert.deepEqual(await results(d), ['200 SOTA command status: SUCCESSFUL']);
        assert.equal((await record(d)).Status, 'SUCCESS');
      } finally {
        await done(d);
      }
    });
  }
});

describe('OS update whose apt change fails before the reboot: SIGKILL at every step of its rollback converges', { concurrency: 3 }, () => {
  const APT_FAILED = /apt-get -yq failed \(100\).*reverting to the snapshot taken before the update/;
  for (const point of points(['apt-install', 'revert', 'revert-reboot'])) {
    it(`killed at ${point}`, async (t) => {
      if (!mnt) return t.skip('needs root and the cached Debian root');
      const d = await device(`sota-afcrash-${point.replace(':', '-')}`, { graceSeconds: point === 'revert-reboot:started' ? 6 : 120 });
      try {
        await d.apt.publish('2', true); // version 2's postinst fails
        d.agent = await startAgent(d.root, { INBM_CRASH_AT: `${KEY}:${point}` });
        await drop(d.root, 'sota.xml', sota('full'));
        await killed(d.agent, point);
        d.agent = await startAgent(d.root);
        // Killed after the reboot command ran, the step stays "started": the new boot id says it took.
        await waitFor('the rollback reboot', async () => ((await reboots(d)) === 1 ? true : undefined));
        const s = await phase(d, 'Failed', APT_FAILED);
        assert.equal(s.lastResult!.status, 400);
        // The boot into the staged snapshot: version 1 again, and nothing more happens.
        await reboot(d);
        assert.equal(d.apt.version(), '1');
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(await reboots(d), 1, 'one reboot: into the snapshot');
        assert.equal(await rollbacks(d), point === 'revert:ran' ? 2 : 1, 'rollback command runs');
        const history = await results(d);
        assert.equal(history.length, 1, JSON.stringify(history));
        assert.match(history[0]!, /^400 .*apt-get -yq failed \(100\)/);
        assert.equal((await record(d)).Status, 'FAIL');
      } finally {
        await done(d);
      }
    });
  }
});
