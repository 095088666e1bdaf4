/**
 * AOTA configParams device and port reach the container the agent creates: a host device mapped
 * into it (used from inside), and the port published in its configuration. The test engine has
 * no bridge (containers run with network none), so the port is checked in the engine's inspect
 * of the container rather than by connecting to it.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { request } from './answer.js';
import { BASE_IMAGE, docker, engineUp, unique } from './engine.js';
import { makeRoot, type Root, type Running, startAgent, stopAgent } from './harness.js';

const ID = unique('inbm-it-opts');
const OPEN_STORAGE = '/var/lib/inbm-test/registry/docker/registry/v2/repositories';
const REPO = `127.0.0.1:5555/${ID}/dev`;
const RESOURCE = `image-${REPO.replace(/[^a-z0-9]+/g, '-')}`;
let dockerHost = '';
let root: Root;
let agent: Running;

before(async () => {
  dockerHost = engineUp(true);
  const cid = docker(['create', '--network', 'none', BASE_IMAGE]);
  try {
    docker(['commit', '--change', 'CMD ["/bin/sleep", "3600"]', cid, `${REPO}:1`]);
  } finally {
    docker(['rm', cid]);
  }
  docker(['push', `${REPO}:1`]);
  docker(['rmi', `${REPO}:1`]);
  root = await makeRoot('resyncSeconds: 1\n');
  agent = await startAgent(root, { DOCKER_HOST: dockerHost });
});

after(async () => {
  if (agent) assert.equal(await stopAgent(agent), 0);
  if (dockerHost) {
    for (const id of docker(['ps', '-aq', '--filter', `label=inbm.dev/resource=${RESOURCE}`])
      .split('\n')
      .filter(Boolean))
      docker(['rm', '-f', id]);
    if (docker(['images', '-q', `${REPO}:1`])) docker(['rmi', `${REPO}:1`]);
    await rm(join(OPEN_STORAGE, ID), { recursive: true, force: true });
  }
});

it('configParams device and port: the device usable inside the container, the port in its configuration', async () => {
  const params = '{"device":"/dev/zero:/dev/z0","port":"8080:80"}';
  const { result } = await request(
    root,
    'opts.xml',
    `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota name="opts"><cmd>pull</cmd><app>docker</app><containerTag>${REPO}:1</containerTag><configParams>${params}</configParams></aota></type></ota></manifest>`,
  );
  assert.deepEqual(result, { status: 200, message: 'AOTA docker pull COMMAND SUCCESSFUL', job_id: '' });
  const id = docker(['ps', '-q', '--filter', `label=inbm.dev/resource=${RESOURCE}`]);
  assert.notEqual(id, '');
  const inspect = JSON.parse(docker(['inspect', id]))[0] as {
    HostConfig: { Devices: unknown; PortBindings: unknown };
    Config: { ExposedPorts: unknown };
  };
  assert.deepEqual(inspect.HostConfig.Devices, [{ PathOnHost: '/dev/zero', PathInContainer: '/dev/z0', CgroupPermissions: 'rwm' }]);
  assert.deepEqual(inspect.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
  assert.deepEqual(inspect.Config.ExposedPorts, { '80/tcp': {} });
  // The device is really there: /dev/zero read through its new name.
  assert.equal(docker(['exec', id, 'sh', '-c', 'head -c 4 /dev/z0 | od -An -tx1']).trim(), '00 00 00 00');
});
