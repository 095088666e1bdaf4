import { installFailed } from '../../core/result.js';
import type { Aota } from '../../manifest/types.js';
import { toName } from '../names.js';
import { type Context, hashAlgorithm, opt, present, rebootOnlyIfYes, type Translation } from './context.js';

/** The reference's runtime command matrix (dispatcher/aota/constants.py). */
const SUPPORTED: Record<string, readonly string[]> = {
  docker: ['import', 'load', 'pull', 'remove', 'stats', 'list'],
  compose: ['up', 'pull', 'down', 'list', 'remove'],
  application: ['update'],
};

export function translateAota(ctx: Context, a: Aota): Translation {
  if (!SUPPORTED[a.app]?.includes(a.cmd)) throw installFailed(`AOTA ${a.app} ${a.cmd}: unsupported command for ${a.app}`);
  if (a.cmd === 'stats' || a.cmd === 'list') {
    const name = present(a.containerTag);
    return { type: 'query', query: { target: 'containers', what: a.cmd, app: a.app as 'docker' | 'compose', ...(name ? { name } : {}) } };
  }
  if (a.app === 'application') return application(ctx, a);
  const tag = present(a.containerTag);
  if (!tag) throw installFailed(`AOTA ${a.app} ${a.cmd}: <containerTag> is required`);
  const needsFetch = a.cmd === 'import' || a.cmd === 'load' || a.cmd === 'up' || (a.app === 'compose' && a.cmd === 'pull');
  if (needsFetch && !a.fetch) throw installFailed(`AOTA ${a.app} ${a.cmd}: <fetch> is required`);
  const artifact = a.fetch
    ? { url: a.fetch, ...(a.signature ? { signature: a.signature } : {}), ...opt('hashAlgorithm', hashAlgorithm(a.sigversion)) }
    : undefined;
  return a.app === 'docker' ? image(ctx, a, tag, artifact) : stack(ctx, a, tag, artifact);
}

type ArtifactIn = { url: string; signature?: string; hashAlgorithm?: 'sha256' | 'sha384' };

function image(ctx: Context, a: Aota, containerTag: string, artifact: ArtifactIn | undefined): Translation {
  const { repo, tag } = splitReference(containerTag);
  const name = toName('image', repo);
  if (artifact) withDownloadCredentials(ctx, a, name, artifact);
  if (a.cmd === 'remove') {
    return ctx.documents(ctx.document('ContainerImage', name, { image: repo, ...opt('tag', tag), ensure: 'absent' }));
  }
  const registry = registryLogin(ctx, a, name);
  const params = configParams(a);
  return ctx.documents(
    ctx.document('ContainerImage', name, {
      image: repo,
      tag: tag ?? (a.cmd === 'pull' ? 'latest' : (a.version ?? 'latest')),
      ensure: 'present',
      source: {
        method: a.cmd as 'import' | 'load' | 'pull',
        ...opt('artifact', artifact),
        ...opt('registry', registry),
      },
      // The reference "starts" an imported root filesystem with /bin/true, which exits at once:
      // a container that cannot stay up would never pass the soak, so import means the image only.
      container:
        a.cmd === 'import'
          ? { run: false }
          : {
              run: true,
              ...opt('command', params?.execcmd),
              ...opt('devices', params?.device ? [params.device] : undefined),
              ...opt('ports', params?.port ? [params.port] : undefined),
            },
    }),
  );
}

function stack(ctx: Context, a: Aota, project: string, artifact: ArtifactIn | undefined): Translation {
  const name = toName('stack', project);
  if (artifact) withDownloadCredentials(ctx, a, name, artifact);
  const ensure = a.cmd === 'down' ? 'stopped' : a.cmd === 'remove' ? 'absent' : 'running';
  return ctx.documents(
    ctx.document('ComposeStack', name, {
      project: toName(project),
      ensure,
      ...opt('source', artifact),
      ...opt('file', present(a.file)),
      ...(a.cmd === 'pull' ? { pullPolicy: 'always' as const } : {}),
      ...opt('registry', registryLogin(ctx, a, name)),
    }),
  );
}

function application(ctx: Context, a: Aota): Translation {
  if (!a.fetch) throw installFailed('AOTA application update: <fetch> is required');
  const file =
    a.fetch
      .replace(/[?#].*$/, '')
      .split('/')
      .pop() || 'package';
  const name = toName('app', file.replace(/\.(deb|rpm)$/, ''));
  const source: ArtifactIn & { credentials?: { secretRef: string } } = {
    url: a.fetch,
    ...(a.signature ? { signature: a.signature } : {}),
    ...opt('hashAlgorithm', hashAlgorithm(a.sigversion)),
  };
  withDownloadCredentials(ctx, a, name, source);
  return ctx.documents(
    ctx.document('ApplicationPackage', name, { requestId: ctx.requestId, source, reboot: rebootOnlyIfYes(a.deviceReboot, false) }),
  );
}

function withDownloadCredentials(ctx: Context, a: Aota, name: string, artifact: ArtifactIn & { credentials?: { secretRef: string } }) {
  const ref = ctx.credentials(`${name}-download`, a.username, a.password);
  if (ref) artifact.credentials = ref;
}

function registryLogin(ctx: Context, a: Aota, name: string) {
  const server = present(a.dockerRegistry);
  const ref = ctx.credentials(`${name}-registry`, a.dockerUsername, a.dockerPassword);
  if (!ref) return undefined;
  if (!server) throw installFailed('AOTA: <dockerUsername>/<dockerPassword> need a <dockerRegistry>');
  return { server, credentials: ref };
}

/** configParams is a small JSON object with device, port and execcmd strings (config_param_schema.json). */
function configParams(a: Aota): { device?: string; port?: string; execcmd?: string } | undefined {
  if (a.configParams === undefined || a.configParams.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(a.configParams);
  } catch {
    throw installFailed('AOTA: <configParams> is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw installFailed('AOTA: <configParams> must be a JSON object');
  for (const [k, v] of Object.entries(parsed)) {
    if (!['device', 'port', 'execcmd'].includes(k))
      throw installFailed(`AOTA: <configParams> key "${k}" is not one of device, port, execcmd`);
    if (typeof v !== 'string') throw installFailed(`AOTA: <configParams> "${k}" must be a string`);
  }
  return parsed as { device?: string; port?: string; execcmd?: string };
}

/** "registry:5000/app:1.2" → repo "registry:5000/app", tag "1.2" (a colon before the last slash is a port). */
export function splitReference(ref: string): { repo: string; tag?: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref };
}
