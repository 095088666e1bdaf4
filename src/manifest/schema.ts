/**
 * The reference's manifest and schedule XSDs as data (`manifest_schema.xsd`,
 * `schedule_manifest_schema.xsd`, inbm v4.2.6; see ../shared/spec/inbm-reference.md §1).
 */
import type { ElementDef, Particle, SimpleType } from './grammar.js';

const str = (max?: number): SimpleType => (max === undefined ? { kind: 'string' } : { kind: 'string', max });
const oneOf = (...values: string[]): SimpleType => ({ kind: 'enum', values });
const leaf = (text: SimpleType): ElementDef => ({ text });
const opt = (name: string, el: ElementDef, max = 1): Particle => ({ name, el, min: 0, max });
const req = (name: string, el: ElementDef, max = 1): Particle => ({ name, el, min: 1, max });

const Max50 = leaf(str(50));
const Max200 = leaf(str(200));
const Path1500 = leaf(str(1500));
const Sig1000 = leaf(str(1000));
const Max5000 = leaf(str(5000));
const URL700 = leaf({ kind: 'uri', max: 700 });
const Version = leaf({ kind: 'decimal' });
const SigVersion = leaf({ kind: 'decimal', oneOf: [256, 384] });
const XsDate = leaf({ kind: 'date' });
const HEX = '[a-fA-F0-9]';
const UUID = `${HEX}{8}-${HEX}{4}-${HEX}{4}-${HEX}{4}-${HEX}{12}`;
const Guid = leaf({ kind: 'pattern', re: new RegExp(`^${UUID}$`), what: 'a GUID (8-4-4-4-12 hex digits)' });
const PKG = '[a-zA-Z0-9][a-zA-Z0-9+.-]*(?::[a-zA-Z0-9][a-zA-Z0-9+.-]*)?';
const PackageList = leaf({
  kind: 'pattern',
  re: new RegExp(`^(?:${PKG}(?:,${PKG})*)?$`),
  what: 'a comma-separated package list without spaces',
});

const seq = (...children: Particle[]): ElementDef => ({ model: 'sequence', children });
const all = (...children: Particle[]): ElementDef => ({ model: 'all', children });
const choice = (...children: Particle[]): ElementDef => ({ model: 'choice', children });
const pathOnly = seq(req('path', Path1500));

const aota: ElementDef = {
  ...all(
    req('cmd', leaf(oneOf('down', 'import', 'list', 'load', 'pull', 'remove', 'stats', 'up', 'update'))),
    req('app', leaf(oneOf('docker', 'btrfs', 'compose', 'application'))),
    opt('configParams', Max50),
    opt('fetch', URL700),
    opt('file', Max50),
    opt('version', Version),
    opt('signature', Sig1000),
    opt('sigversion', SigVersion),
    opt('containerTag', Max200),
    opt('deviceReboot', Max50),
    opt('username', Max50),
    opt('password', Max50),
    opt('dockerRegistry', Max200),
    opt('dockerUsername', Max50),
    opt('dockerPassword', Max50),
  ),
  attrs: { name: { type: str() } },
};

const fota: ElementDef = {
  ...all(
    opt('fetch', URL700),
    req('biosversion', Max50),
    opt('sigversion', SigVersion),
    opt('signature', Sig1000),
    req('manufacturer', Max50),
    req('product', Max50),
    opt('productversion', Max50),
    req('vendor', Max50),
    req('releasedate', XsDate),
    opt('path', Path1500),
    opt('boot', Max50),
    opt('guid', Guid),
    opt('size', Max50),
    opt('tooloptions', Max50),
    opt('username', Max50),
    opt('password', Max50),
    opt('deviceReboot', Max50),
  ),
  attrs: { name: { type: str(), required: true } },
};

const sota: ElementDef = all(
  req('cmd', {
    text: oneOf('update', 'upgrade'),
    attrs: { logtofile: { type: oneOf('Yes', 'No', 'YES', 'NO', 'Y', 'N', 'n', 'y') } },
  }),
  opt('mode', leaf(oneOf('full', 'no-download', 'download-only', 'cancel'))),
  opt('package_list', PackageList),
  opt('fetch', URL700),
  opt('signature', Sig1000),
  opt('username', Max50),
  opt('password', Max5000),
  opt('release_date', XsDate),
  opt('path', Path1500),
  opt('deviceReboot', Max50),
);

const osRepos = seq(req('repos', seq(req('source_pkg', Path1500, 25))));
const appRepo = seq(req('repos', seq(req('source_pkg', Max200, 2))), req('filename', Max200));

const manifest: ElementDef = seq(
  req('type', leaf(oneOf('config', 'ota', 'cmd', 'source'))),
  opt('cmd', leaf(oneOf('custom', 'query', 'shutdown', 'restart', 'decommission'))),
  opt(
    'config',
    seq(
      req('cmd', leaf(oneOf('get_element', 'set_element', 'load', 'append', 'remove'))),
      req(
        'configtype',
        choice(
          req('get', pathOnly),
          req('set', pathOnly),
          req('load', seq(opt('fetch', URL700), opt('path', Path1500), opt('signature', Sig1000))),
          req('append', pathOnly),
          req('remove', pathOnly),
        ),
      ),
    ),
  ),
  opt('custom', seq(req('data', Path1500))),
  opt('query', seq(req('option', leaf(oneOf('all', 'hw', 'fw', 'os', 'status', 'version', 'security', 'guid', 'swbom'))))),
  opt('restart', seq()),
  opt(
    'ota',
    seq(
      req(
        'header',
        all(
          opt('id', Max50),
          opt('name', Max50),
          opt('description', Max50),
          req('type', leaf(oneOf('aota', 'fota', 'sota', 'pota'))),
          req('repo', leaf(oneOf('local', 'remote'))),
        ),
      ),
      req('type', choice(req('aota', aota), req('fota', fota), req('sota', sota), req('pota', seq(req('fota', fota), req('sota', sota))))),
      opt('bundle', all(req('name', leaf(str())), req('version', Version), req('signature', leaf(str())))),
    ),
  ),
  opt('osSource', choice(req('add', osRepos), req('update', osRepos), req('remove', osRepos), req('list', leaf(str())))),
  opt(
    'applicationSource',
    choice(
      req('add', seq(opt('gpg', seq(req('uri', Path1500), req('keyname', Max200))), req('repo', appRepo))),
      req('update', seq(req('repo', appRepo))),
      req('remove', seq(opt('gpg', seq(req('keyname', Max50))), req('repo', seq(req('filename', Max200))))),
      req('list', leaf(str())),
    ),
  ),
);

const cron = (re: string, what: string): ElementDef => leaf({ kind: 'pattern', re: new RegExp(`^(?:${re}|[*]|[-]|[/])$`), what });
const jobId = leaf({ kind: 'pattern', re: new RegExp(`^[A-Za-z]{4,9}-${UUID}$`), what: 'a job id (4-9 letters, "-", a UUID)' });

const scheduleRequest: ElementDef = seq(
  req('request_id', leaf({ kind: 'pattern', re: new RegExp(`^${UUID}$`), what: 'a UUID' })),
  req(
    'update_schedule',
    seq(
      req('schedule', {
        model: 'choice',
        choiceMin: 0,
        choiceMax: 30,
        children: [
          opt(
            'single_schedule',
            seq(req('job_id', jobId), opt('start_time', leaf({ kind: 'dateTime' })), opt('end_time', leaf({ kind: 'dateTime' }))),
            30,
          ),
          opt(
            'repeated_schedule',
            seq(
              req('job_id', jobId),
              req('duration', leaf({ kind: 'duration' })),
              req('cron_minutes', cron('[0-5]?[0-9]', 'a cron minute (0-59, *, -, /)')),
              req('cron_hours', cron('[0-1]?[0-9]|2[0-3]', 'a cron hour (0-23, *, -, /)')),
              req('cron_day_month', cron('[1-9]|[12][0-9]|3[01]', 'a cron day of month (1-31, *, -, /)')),
              req('cron_month', cron('[1-9]|1[0-2]', 'a cron month (1-12, *, -, /)')),
              req('cron_day_week', cron('[0-6]', 'a cron day of week (0-6, *, -, /)')),
            ),
            30,
          ),
        ],
      }),
      req('manifests', seq(req('manifest_xml', leaf(str()), Number.POSITIVE_INFINITY))),
    ),
    30,
  ),
);

export const ROOTS: Record<string, ElementDef> = { manifest, schedule_request: scheduleRequest };
