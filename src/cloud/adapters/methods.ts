/**
 * Cloud methods → INBM manifests, built as the reference's cloudadapter builds them
 * (`cloudadapter/agent/publisher.py`, `device_manager.py`): same templates, same tag order,
 * same value checks and the same error texts, so a dashboard made for INBM works unchanged.
 * Pure: the adapter decides where the manifest goes and what is answered.
 */

/** The texts the reference returns for each method (constants.MESSAGE). */
export const MESSAGE = {
  SHUTDOWN: 'Initiated device shutdown',
  DECOMMISSION: 'Device decommissioned',
  REBOOT: 'Initiated device reboot',
  MANIFEST: 'Manifest Update Triggered',
  AOTA: 'AOTA Triggered',
  FOTA: 'FOTA Triggered',
  SOTA: 'SOTA Triggered',
  CONFIG: 'Configuration Method Triggered',
  QUERY: 'Query Method Triggered',
} as const;

/** A method's arguments were refused; the message names the fields, as the reference's ValueError does. */
export class ParamError extends Error {
  override readonly name = 'ParamError';
}

export interface MethodCall {
  /** The manifest to submit. */
  xml: string;
  /** The reference's return text for this method. */
  trigger: string;
  /** decommission_device: the reference deletes the adapter's own configuration first. */
  decommission?: boolean;
}

type Args = Record<string, string>;

/** Method arguments arrive as JSON; the reference works on strings, so scalars become strings and the rest is dropped. */
export function toArgs(params: unknown): Args {
  if (!params || typeof params !== 'object' || Array.isArray(params)) return {};
  const args: Args = {};
  for (const [k, v] of Object.entries(params))
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') args[k] = String(v);
  return args;
}

/** inbm_common_lib clean_input: html.escape(quote=True), then NULs removed. */
export function cleanInput(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#x27;')
    .replace(/\0/g, '');
}

/** create_xml_tags: the named arguments that are present, in the given order. */
function tags(args: Args, ...names: string[]): string {
  return names.map((n) => (args[n] === undefined ? '' : `<${n}>${cleanInput(args[n]!)}</${n}>`)).join('');
}

/** _sanitize_values: each parameter must be given and one of its values (any case); canonicalises the case. */
function sanitize(args: Args, valid: Record<string, readonly string[]>): void {
  let error = '';
  for (const [param, values] of Object.entries(valid)) {
    const value = args[param];
    if (!value) {
      error += `No input given for '${param}'. `;
      continue;
    }
    const match = values.find((v) => v.toLowerCase() === value.toLowerCase());
    if (match === undefined) error += `'${value}' is not valid for '${param}'. `;
    else args[param] = match;
  }
  if (error) throw new ParamError(error.trimEnd());
}

/** _require_values: the reference's "Missing required fields: ['a', 'b']". */
function require(args: Args, ...names: string[]): void {
  const missing = names.filter((n) => !args[n]);
  if (missing.length > 0) throw new ParamError(`Missing required fields: [${missing.map((m) => `'${m}'`).join(', ')}]`);
}

/** Moves a snake_case argument to the camelCase tag the schema uses, as the reference does for container_tag. */
function rename(args: Args, from: string, to: string): void {
  const v = args[from];
  delete args[from];
  if (v) args[to] = v;
}

const OTA = (type: string, body: string) =>
  `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>${type}</type><repo>remote</repo></header><type>${body}</type></ota></manifest>`;

function aota(args: Args): MethodCall {
  sanitize(args, {
    app: ['docker', 'compose', 'application'],
    cmd: ['down', 'import', 'list', 'load', 'pull', 'remove', 'stats', 'up', 'update'],
  });
  rename(args, 'container_tag', 'containerTag');
  rename(args, 'device_reboot', 'deviceReboot');
  // The reference table lists these snake_case too, but only reads the camelCase keys; accept both.
  for (const k of ['Registry', 'Username', 'Password'])
    if (args[`docker_${k.toLowerCase()}`]) rename(args, `docker_${k.toLowerCase()}`, `docker${k}`);
  const body = tags(
    args,
    'cmd',
    'app',
    'fetch',
    'file',
    'version',
    'signature',
    'containerTag',
    'deviceReboot',
    'username',
    'password',
    'dockerRegistry',
    'dockerUsername',
    'dockerPassword',
  );
  return { xml: OTA('aota', `<aota name="sample-rpm">${body}</aota>`), trigger: MESSAGE.AOTA };
}

function fota(args: Args): MethodCall {
  rename(args, 'release_date', 'releasedate');
  require(args, 'fetch', 'biosversion', 'manufacturer', 'product', 'vendor', 'releasedate');
  const body = tags(
    args,
    'signature',
    'fetch',
    'biosversion',
    'vendor',
    'manufacturer',
    'product',
    'releasedate',
    'path',
    'tooloptions',
    'username',
    'password',
  );
  return { xml: OTA('fota', `<fota name="sample">${body}</fota>`), trigger: MESSAGE.FOTA };
}

function sota(args: Args): MethodCall {
  sanitize(args, { cmd: ['update', 'upgrade'], log_to_file: ['N', 'Y'] });
  const body = `<cmd logtofile="${args.log_to_file}">${args.cmd}</cmd>${tags(args, 'fetch', 'signature', 'version', 'username', 'password', 'release_date')}`;
  return { xml: OTA('sota', `<sota>${body}</sota>`), trigger: MESSAGE.SOTA };
}

function config(args: Args): MethodCall {
  sanitize(args, { cmd: ['get', 'load', 'set', 'append', 'remove'] });
  const cmd = args.cmd!;
  const doc = (verb: string, inner: string) =>
    `<?xml version="1.0" encoding="UTF-8"?><manifest><type>config</type><config><cmd>${verb}</cmd><configtype><${cmd}>${inner}</${cmd}></configtype></config></manifest>`;
  if (cmd === 'load') {
    require(args, 'fetch');
    return { xml: doc(cmd, tags(args, 'fetch', 'signature')), trigger: MESSAGE.CONFIG };
  }
  require(args, 'path');
  const verb = cmd === 'append' || cmd === 'remove' ? cmd : `${cmd}_element`;
  return { xml: doc(verb, tags(args, 'path')), trigger: MESSAGE.CONFIG };
}

function query(args: Args): MethodCall {
  sanitize(args, { option: ['all', 'hw', 'fw', 'guid', 'os', 'security', 'status', 'swbom', 'version'] });
  return {
    xml: `<?xml version="1.0" encoding="UTF-8"?><manifest><type>cmd</type><cmd>query</cmd><query><option>${args.option}</option></query></manifest>`,
    trigger: MESSAGE.QUERY,
  };
}

function manifest(args: Args): MethodCall {
  if (!args.manifest?.trim()) throw new ParamError('No manifest was given!');
  return { xml: args.manifest, trigger: MESSAGE.MANIFEST };
}

/** The reference publishes "" on manageability/request/<cmd>; here the same request is a cmd manifest. */
const power = (cmd: string, trigger: string, decommission = false): MethodCall => ({
  xml: `<?xml version="1.0" encoding="UTF-8"?><manifest><type>cmd</type><cmd>${cmd}</cmd></manifest>`,
  trigger,
  ...(decommission ? { decommission } : {}),
});

const METHODS: Record<string, (args: Args) => MethodCall> = {
  triggerota: manifest,
  triggeraota: aota,
  triggerfota: fota,
  triggersota: sota,
  triggerconfig: config,
  triggerquery: query,
  shutdown_device: () => power('shutdown', MESSAGE.SHUTDOWN),
  reboot_device: () => power('restart', MESSAGE.REBOOT),
  decommission_device: () => power('decommission', MESSAGE.DECOMMISSION, true),
};

export const METHOD_NAMES: readonly string[] = Object.keys(METHODS);

/**
 * The manifest a method call stands for; undefined for a method the agent does not know.
 * Throws ParamError naming the refused or missing fields.
 */
export function methodCall(method: string, params: unknown): MethodCall | undefined {
  const build = Object.hasOwn(METHODS, method) ? METHODS[method] : undefined;
  return build?.(toArgs(params));
}
