/** Typed views of a manifest once the grammar has accepted it (shapes mirror manifest_schema.xsd). */

export interface Header {
  id?: string;
  name?: string;
  description?: string;
  type: 'aota' | 'fota' | 'sota' | 'pota';
  repo: 'local' | 'remote';
}

export interface Aota {
  '@name'?: string;
  cmd: 'down' | 'import' | 'list' | 'load' | 'pull' | 'remove' | 'stats' | 'up' | 'update';
  app: 'docker' | 'compose' | 'application' | 'btrfs';
  configParams?: string;
  fetch?: string;
  file?: string;
  version?: string;
  signature?: string;
  sigversion?: string;
  containerTag?: string;
  deviceReboot?: string;
  username?: string;
  password?: string;
  dockerRegistry?: string;
  dockerUsername?: string;
  dockerPassword?: string;
}

export interface Fota {
  '@name': string;
  fetch?: string;
  biosversion: string;
  sigversion?: string;
  signature?: string;
  manufacturer: string;
  product: string;
  productversion?: string;
  vendor: string;
  releasedate: string;
  path?: string;
  boot?: string;
  guid?: string;
  size?: string;
  tooloptions?: string;
  username?: string;
  password?: string;
  deviceReboot?: string;
}

export interface Sota {
  cmd: 'update' | 'upgrade';
  'cmd@logtofile'?: string;
  mode?: 'full' | 'no-download' | 'download-only' | 'cancel';
  package_list?: string;
  fetch?: string;
  signature?: string;
  username?: string;
  password?: string;
  release_date?: string;
  path?: string;
  deviceReboot?: string;
}

export interface Ota {
  header: Header;
  type: { aota?: Aota; fota?: Fota; sota?: Sota; pota?: { fota: Fota; sota: Sota } };
}

export interface PathOnly {
  path: string;
}
export interface ConfigLoad {
  fetch?: string;
  path?: string;
  signature?: string;
}
export interface Config {
  cmd: 'get_element' | 'set_element' | 'load' | 'append' | 'remove';
  configtype: { get?: PathOnly; set?: PathOnly; load?: ConfigLoad; append?: PathOnly; remove?: PathOnly };
}

export interface Repos {
  repos: { source_pkg: string[] };
}
export interface AppRepo extends Repos {
  filename: string;
}
export interface OsSource {
  add?: Repos;
  update?: Repos;
  remove?: Repos;
  list?: string;
}
export interface ApplicationSource {
  add?: { gpg?: { uri: string; keyname: string }; repo: AppRepo };
  update?: { repo: AppRepo };
  remove?: { gpg?: { keyname: string }; repo: { filename: string } };
  list?: string;
}

export interface Manifest {
  type: 'config' | 'ota' | 'cmd' | 'source';
  cmd?: 'custom' | 'query' | 'shutdown' | 'restart' | 'decommission';
  config?: Config;
  custom?: { data: string };
  query?: { option: 'all' | 'hw' | 'fw' | 'os' | 'status' | 'version' | 'security' | 'guid' | 'swbom' };
  restart?: Record<string, never>;
  ota?: Ota;
  osSource?: OsSource;
  applicationSource?: ApplicationSource;
}

export interface SingleSchedule {
  job_id: string;
  start_time?: string;
  end_time?: string;
}
export interface RepeatedSchedule {
  job_id: string;
  duration: string;
  cron_minutes: string;
  cron_hours: string;
  cron_day_month: string;
  cron_month: string;
  cron_day_week: string;
}

/** A schedule_request with every embedded manifest already parsed and checked. */
export interface ScheduleRequest {
  request_id: string;
  update_schedule: Array<{
    schedule: { single_schedule?: SingleSchedule[]; repeated_schedule?: RepeatedSchedule[] };
    manifests: Manifest[];
  }>;
}

export type ParsedManifest = { root: 'manifest'; manifest: Manifest } | { root: 'schedule_request'; schedule: ScheduleRequest };
