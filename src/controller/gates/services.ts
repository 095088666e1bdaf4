import { spawn } from 'node:child_process';
import type { Gate, GateContext } from './types.js';

export interface ServicesGateOptions {
  services: string[];
  /** Argument array with a `{service}` placeholder, e.g. `['systemctl', 'is-active', '--quiet', '{service}']`. */
  command: string[] | undefined;
  timeoutMs?: number;
}

// systemd's unit-name alphabet; a leading '-' would be read as an option by the check command.
const SERVICE_NAME = /^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*$/;

export function servicesGate({ services, command, timeoutMs = 10_000 }: ServicesGateOptions): Gate {
  return {
    name: 'services',
    async check(ctx) {
      if (!command?.length)
        return { gate: 'services', ok: true, measured: null, threshold: null, skipped: true, message: 'no service check command set' };
      const verdicts = await Promise.all(
        services.map(async (s) => {
          if (!SERVICE_NAME.test(s)) return `${s} (not a valid service name)`;
          const argv = command.map((a) => a.replaceAll('{service}', s));
          const r = await run(argv, timeoutMs, ctx);
          if (r === 'timeout') return `${s} (check timed out after ${timeoutMs} ms)`;
          return r === 0 ? undefined : s;
        }),
      );
      const inactive = verdicts.filter((v) => v !== undefined);
      const active = services.length - inactive.length;
      const base = { gate: 'services', measured: active, threshold: services.length, unit: 'active' };
      if (inactive.length > 0) return { ...base, ok: false, message: `inactive: ${inactive.join(', ')}` };
      return { ...base, ok: true, message: services.length ? `all active: ${services.join(', ')}` : 'no services required' };
    },
  };
}

/** Exit code, or 'timeout'. Rejects when the command cannot be started (the gate cannot be evaluated). */
function run([file, ...args]: string[], timeoutMs: number, { signal }: GateContext): Promise<number | 'timeout'> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    // Own process group and no pipes: a timeout kills the whole tree, and a grandchild
    // holding stdout cannot keep us waiting.
    const child = spawn(file!, args, { stdio: 'ignore', detached: true, shell: false });
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const onAbort = () => {
      kill();
      reject(signal!.reason);
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    child.once('error', (err) => {
      done();
      reject(err);
    });
    child.once('exit', (code) => {
      done();
      resolve(timedOut ? 'timeout' : (code ?? -1));
    });
  });
}
