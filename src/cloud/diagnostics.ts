/**
 * Diagnostics: the controller's pre-change gates run on demand and periodically, their
 * results published as events. On demand means the reference's diagnostic RPC
 * (`diagnostic/command/<cmd>` with `{"cmd","id"}` → `diagnostic/response/<id>` with
 * `{"cmd","rc","message"}`) or a direct call (a cloud method). Periodically means every
 * containerHealthIntervalSeconds, re-read from the configuration file each time.
 */
import type { GateResult, GateRun } from '../controller/gates/index.js';
import type { Logger } from '../core/log.js';
import { readConfValues } from '../reconcilers/configuration/index.js';
import type { Link } from './link.js';
import { inbmOut, type TelemetryOut } from './telemetry.js';

export const DIAGNOSTIC_COMMAND = 'diagnostic/command/+';
export const diagnosticResponse = (id: string) => `diagnostic/response/${id}`;

/** Reference command → the gate it runs (install_check runs them all). */
const SINGLE: Record<string, string> = {
  check_network: 'network',
  check_storage: 'storage',
  check_memory: 'memory',
  health_device_battery: 'battery',
  swCheck: 'services',
};
export const COMMANDS: readonly string[] = ['install_check', 'container_health_check', ...Object.keys(SINGLE)];

export interface DiagnosticResult {
  cmd: string;
  rc: 0 | 1;
  message: string;
}

export interface ContainerLister {
  /** Whether an engine could answer (its socket exists), checked without loading a client. */
  available(): Promise<boolean>;
  list(): Promise<Array<{ name: string; image: string; state: string }>>;
}

export interface DiagnosticsOptions {
  link: Link;
  /** The agent's gates with the thresholds in force (src/agent.ts measureGates(settings)). */
  measure: () => Promise<GateRun>;
  confFile: string;
  out?: TelemetryOut;
  docker?: ContainerLister;
  log?: Logger;
  /** Test override, as in startTelemetry: multiplies the configured interval. */
  timeScale?: number;
  /** Whether to answer `diagnostic/command/+` (off when another process owns that topic). */
  serveCommands?: boolean;
}

export interface Diagnostics {
  run(cmd?: string): Promise<DiagnosticResult>;
  stop(): Promise<void>;
}

const describe = (results: GateResult[]) => results.map((r) => `${r.gate}: ${r.message}`).join('; ');

/** One diagnostic command as the reference answers it: rc 0 when every check passed. */
export async function diagnose(cmd: string, measure: () => Promise<GateRun>, docker?: ContainerLister): Promise<DiagnosticResult> {
  if (cmd === 'container_health_check') {
    if (!docker) return { cmd, rc: 1, message: 'no container engine configured' };
    if (!(await docker.available())) return { cmd, rc: 1, message: 'no container engine answering' };
    try {
      const list = await docker.list();
      const down = list.filter((c) => c.state !== 'running');
      const message = `${list.length} containers, ${list.length - down.length} running${down.length ? `; not running: ${down.map((c) => c.name).join(', ')}` : ''}`;
      return { cmd, rc: 0, message };
    } catch (err) {
      return { cmd, rc: 1, message: err instanceof Error ? err.message : String(err) };
    }
  }
  const gate = SINGLE[cmd];
  if (cmd !== 'install_check' && gate === undefined) return { cmd, rc: 1, message: `Unknown command: ${cmd}` };
  let run: GateRun;
  try {
    run = await measure();
  } catch (err) {
    return { cmd, rc: 1, message: `checks could not run: ${err instanceof Error ? err.message : String(err)}` };
  }
  const results = gate ? run.results.filter((r) => r.gate === gate) : run.results;
  const ok = results.every((r) => r.ok);
  return { cmd, rc: ok ? 0 : 1, message: describe(ok ? results : results.filter((r) => !r.ok)) };
}

/** The reference telemetry agent's event text for a diagnostic result. */
export const eventText = (r: DiagnosticResult) => `Command: ${r.cmd} ${r.rc === 0 ? 'passed' : 'failed'}. Message: ${r.message}`;

export async function startDiagnostics(o: DiagnosticsOptions): Promise<Diagnostics> {
  const out = o.out ?? inbmOut(o.link);
  const scale = o.timeScale ?? 1;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const run = async (cmd = 'install_check') => {
    const r = await diagnose(cmd, o.measure, o.docker);
    await out.event(eventText(r)).catch((err: unknown) => o.log?.warn({ err: String(err) }, 'diagnostic event not sent'));
    return r;
  };

  const intervalSeconds = async () => {
    const v = await readConfValues(o.confFile, ['containerHealthIntervalSeconds']).catch(() => ({}) as Record<string, string>);
    return Number(v.containerHealthIntervalSeconds) || 600;
  };
  const arm = async () => {
    if (stopped) return;
    const seconds = await intervalSeconds();
    if (stopped) return;
    timer = setTimeout(
      async () => {
        await run('install_check');
        // Periodically only where an engine runs: a device without Docker is not failing a check.
        if (o.docker && (await o.docker.available())) await run('container_health_check');
        await arm();
      },
      seconds * 1000 * scale,
    );
    timer.unref();
  };

  if (o.serveCommands !== false) {
    await o.link.subscribe(DIAGNOSTIC_COMMAND, (topic, payload) => {
      if (stopped) return;
      let id: string | undefined;
      try {
        const body = JSON.parse(payload.toString('utf8')) as { id?: unknown };
        if (typeof body.id === 'string' && /^[\w-]{1,64}$/.test(body.id)) id = body.id;
      } catch {
        // A request without a usable id cannot be answered; the event still reports the result.
      }
      void run(topic.slice(topic.lastIndexOf('/') + 1))
        .then((r) => (id ? o.link.publish(diagnosticResponse(id), JSON.stringify(r), { qos: 1 }) : undefined))
        .catch((err: unknown) => o.log?.warn({ err: String(err) }, 'diagnostic response not sent'));
    });
  }
  await arm();
  return {
    run,
    async stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
