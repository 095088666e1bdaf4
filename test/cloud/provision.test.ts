import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { CLIENTS, provision } from '../../src/cli/provision.js';

it('provision: CA-signed certificates per client, a TLS-only conf with the ACL, private keys 0600, no silent overwrite', async () => {
  const dir = join(await mkdtemp(join(tmpdir(), 'inbm-prov-')), 'mqtt');
  const p = await provision({ dir, port: 18883, brokerUser: 'root' });
  for (const cn of [...Object.values(CLIENTS), 'broker']) {
    const cert = join(dir, `${cn}.crt`);
    assert.match(execFileSync('openssl', ['verify', '-CAfile', p.ca, cert], { encoding: 'utf8' }), /: OK/);
    assert.match(execFileSync('openssl', ['x509', '-in', cert, '-noout', '-subject'], { encoding: 'utf8' }), new RegExp(`CN ?= ?${cn}`));
    assert.equal((await stat(join(dir, `${cn}.key`))).mode & 0o777, 0o600);
  }
  assert.match(
    execFileSync('openssl', ['x509', '-in', join(dir, 'broker.crt'), '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' }),
    /IP Address:127\.0\.0\.1/,
  );
  const conf = await readFile(p.conf, 'utf8');
  for (const line of [
    'listener 18883 127.0.0.1',
    'require_certificate true',
    'use_identity_as_username true',
    'allow_anonymous false',
    `acl_file ${p.acl}`,
  ]) {
    assert.ok(conf.split('\n').includes(line), line);
  }
  const acl = await readFile(p.acl, 'utf8');
  // The CLI may request and read results, never read requests; the agent the reverse.
  const section = (user: string) => acl.split(`user ${user}\n`)[1]!.split('\n\n')[0]!;
  assert.match(section(CLIENTS.cli), /^topic write manageability\/request\/#$/m);
  assert.doesNotMatch(section(CLIENTS.cli), /read manageability\/request/);
  assert.match(section(CLIENTS.agent), /^topic read manageability\/request\/#$/m);
  assert.doesNotMatch(section(CLIENTS.agent), /write manageability\/request/);
  await assert.rejects(provision({ dir, port: 18883, brokerUser: 'root' }), /exists; --force/);
});
