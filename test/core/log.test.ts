import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { it } from 'node:test';
import { createLogger } from '../../src/core/log.js';

it('secrets are redacted from every log line', async () => {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += chunk;
      done();
    },
  });
  const log = createLogger('debug', sink).child({ component: 'test' });
  const secret = 'pl4nted-s3cret';
  log.info({ password: secret, registry: { dockerPassword: secret }, credentials: { password: secret }, token: secret }, 'login');
  log.info({ download: { headers: { authorization: `Basic ${secret}` } } }, 'fetch');
  await new Promise((r) => setTimeout(r, 20));
  assert.match(out, /"login"/);
  assert.match(out, /\[redacted\]/);
  assert.ok(!out.includes(secret), out);
});
