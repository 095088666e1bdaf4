/**
 * Where telemetry values come from: files under /proc, /sys and /etc (root settable, so tests
 * and --root demos read prepared trees), plus `dpkg-query` for the software BOM. No shells and
 * no systeminformation: its calls spawn dozens of subprocesses for what one file read gives.
 * Value names and shapes follow the reference's telemetry agent (inbm-reference.md §6).
 */
import { readdir, readFile, statfs } from 'node:fs/promises';
import { machine, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { VERSION } from '../core/version.js';
import { runCommand } from '../drivers/command.js';
import { readPlatform } from '../platform/dmi.js';

export const UNKNOWN = 'Unknown';

export interface SourcePaths {
  /** `/proc` (cpuinfo, stat, meminfo, sys/kernel/*) */
  procDir: string;
  /** `/sys` (block devices, thermal zones) */
  sysDir: string;
  dmiDir: string;
  /** Where ARM boards without DMI describe themselves. */
  deviceTreeDirs: string[];
  osRelease: string;
  powerSupplyDir: string;
  routeFile: string;
  /** The file system whose use is `percentDiskUsed` (the reference measures its working directory). */
  diskPath: string;
}

export type Values = Record<string, string | number>;

const read = (path: string) => readFile(path, 'utf8').catch(() => '');

/** The reference sends str(datetime) of the BIOS date. */
export function biosDate(iso: string | undefined): string {
  return iso ? `${iso} 00:00:00` : UNKNOWN;
}

export function meminfoBytes(text: string, key: 'MemTotal' | 'MemAvailable'): number {
  const kb = new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(text)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

export function cpuModel(cpuinfo: string): string {
  return /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? UNKNOWN;
}

/** `lsblk -b -d -o name,size,rota` from /sys/block: whole disks, size in bytes, SSD when not rotational. */
async function disks(sysDir: string): Promise<string> {
  const block = join(sysDir, 'block');
  const names = (await readdir(block).catch(() => [] as string[])).filter((n) => !/^(ram|loop|zram)\d/.test(n)).sort();
  if (names.length === 0) return UNKNOWN;
  const list = await Promise.all(
    names.map(async (name) => ({
      NAME: name,
      SIZE: String(Number((await read(join(block, name, 'size'))).trim() || 0) * 512),
      SSD: (await read(join(block, name, 'queue', 'rotational'))).trim() === '0' ? 'True' : 'False',
    })),
  );
  return JSON.stringify(list);
}

/** `platform.uname()` joined, read from /proc/sys/kernel, after the distribution's name. */
async function osInformation(p: SourcePaths): Promise<string> {
  const kernel = (f: string) => read(join(p.procDir, 'sys', 'kernel', f)).then((t) => t.trim());
  const pretty = /^PRETTY_NAME="?(.*?)"?$/m.exec(await read(p.osRelease))?.[1] ?? '';
  const uname = [await kernel('ostype'), await kernel('hostname'), await kernel('osrelease'), await kernel('version'), machine()]
    .filter(Boolean)
    .join(' ');
  return [pretty, uname].filter(Boolean).join(' ') || UNKNOWN;
}

/** The static set, sent once at start (reference: totalPhysicalMemory … diskInformation). */
export async function staticValues(p: SourcePaths): Promise<Values> {
  const platform = await readPlatform({ dmiDir: p.dmiDir, deviceTreeDirs: p.deviceTreeDirs });
  return {
    totalPhysicalMemory: String(meminfoBytes(await read(join(p.procDir, 'meminfo')), 'MemTotal')),
    cpuId: cpuModel(await read(join(p.procDir, 'cpuinfo'))),
    biosVendor: platform?.biosVendor ?? UNKNOWN,
    biosVersion: platform?.biosVersion ?? UNKNOWN,
    biosReleaseDate: biosDate(platform?.biosReleaseDate),
    systemManufacturer: platform?.manufacturer ?? UNKNOWN,
    systemProductName: platform?.product ?? UNKNOWN,
    osInformation: await osInformation(p),
    diskInformation: await disks(p.sysDir),
  };
}

/** Busy and total jiffies from the first line of /proc/stat. */
export function cpuTimes(stat: string): { busy: number; total: number } | undefined {
  const fields = /^cpu\s+(.+)$/m.exec(stat)?.[1]?.trim().split(/\s+/).map(Number);
  if (!fields || fields.length < 4 || fields.some(Number.isNaN)) return undefined;
  // user nice system idle iowait irq softirq steal (guest is already inside user)
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = fields[3]! + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/**
 * CPU use between two collections. The reference samples for 100 ms each time; the delta since
 * the previous collection needs no wait and covers the whole interval, not a 100 ms slice of it.
 */
export class CpuMeter {
  private last: { busy: number; total: number } | undefined;
  constructor(private readonly statFile: string) {}

  async percent(): Promise<number> {
    const now = cpuTimes(await read(this.statFile));
    if (!now) return 0;
    const prev = this.last ?? { busy: 0, total: 0 };
    this.last = now;
    const total = now.total - prev.total;
    return total > 0 ? Math.round(((now.busy - prev.busy) / total) * 1000) / 10 : 0;
  }
}

async function coreTemp(sysDir: string): Promise<number | string> {
  const base = join(sysDir, 'class', 'thermal');
  const zones = (await readdir(base).catch(() => [] as string[])).filter((z) => z.startsWith('thermal_zone'));
  const temps = (await Promise.all(zones.map((z) => read(join(base, z, 'temp')))))
    .map((t) => Number(t.trim()) / 1000)
    .filter((t) => Number.isFinite(t) && t > 0);
  return temps.length > 0 ? Math.max(...temps) : UNKNOWN;
}

/** Little-endian hex from /proc/net/route as a dotted quad. */
const hexIp = (hex: string) => [3, 2, 1, 0].map((i) => Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');

/** The reference's networkInformation JSON: cards with addresses, default gateway, proxies. */
async function network(routeFile: string): Promise<string> {
  const result: Record<string, unknown> = { cards: {} };
  const defaults = (await read(routeFile))
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === '00000000' && f[2] && f[2] !== '00000000');
  if (defaults[0]) result.default_gateways_ipv4 = [hexIp(defaults[0][2]!), defaults[0][0]];
  const cards = result.cards as Record<string, unknown[]>;
  for (const [name, addrs] of Object.entries(networkInterfaces()))
    cards[name] = (addrs ?? []).map((a) => ({ address: a.address, netmask: a.netmask, family: a.family }));
  for (const v of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY']) if (process.env[v] !== undefined) result[v] = process.env[v];
  return JSON.stringify(result);
}

async function battery(dir: string): Promise<number | undefined> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if ((await read(join(dir, name, 'type'))).trim() !== 'Battery') continue;
    const capacity = Number((await read(join(dir, name, 'capacity'))).trim());
    if (Number.isFinite(capacity)) return capacity;
  }
  return undefined;
}

async function percentDiskUsed(path: string): Promise<number> {
  const s = await statfs(path).catch(() => undefined);
  if (!s || s.blocks === 0) return 0;
  // As df and psutil: used / (used + available to unprivileged users).
  const used = s.blocks - s.bfree;
  return Math.round((used / (used + s.bavail)) * 1000) / 10;
}

export interface ContainerStats {
  /** Whether an engine could answer, checked before each collection (the engine may start after the agent). */
  available(): Promise<boolean>;
  stats(): Promise<Array<{ name: string; image: string; cpuPercent: number; memoryBytes: number }>>;
}

/** containerStats as a string, as the reference sends it (trtl's JSON, or why there is none). */
async function containerStats(docker: ContainerStats | undefined): Promise<string> {
  if (!docker) return 'Docker is not available';
  try {
    return JSON.stringify(await docker.stats());
  } catch (err) {
    // e.g. a container removed between the list and its stats: the next collection will do.
    return `Docker stats failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** One dynamic bundle's values (reference get_dynamic_telemetry). */
export async function dynamicValues(p: SourcePaths, cpu: CpuMeter, docker?: ContainerStats): Promise<Values> {
  const [cpuPercent, meminfo, disk, temp, net, stats, bat] = await Promise.all([
    cpu.percent(),
    read(join(p.procDir, 'meminfo')),
    percentDiskUsed(p.diskPath),
    coreTemp(p.sysDir),
    network(p.routeFile),
    containerStats(docker),
    battery(p.powerSupplyDir),
  ]);
  return {
    systemCpuPercent: cpuPercent,
    containerStats: stats,
    availableMemory: meminfoBytes(meminfo, 'MemAvailable'),
    percentDiskUsed: disk,
    coreTempCelsius: temp,
    networkInformation: net,
    friendlyINBMVersionCommit: `inbm ${VERSION}`,
    ...(bat !== undefined ? { batteryStatus: bat } : {}),
  };
}

/** `dpkg-query -W` as argv; `--admindir` points it at a root's package database. */
export function swBomCommand(dpkgAdminDir?: string): string[] {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format placeholders
  return ['dpkg-query', ...(dpkgAdminDir ? [`--admindir=${dpkgAdminDir}`] : []), '-f', '${Package} ${Version}\n', '-W'];
}

export async function softwareBom(argv: readonly string[]): Promise<string[]> {
  const { stdout } = await runCommand(argv, 60_000);
  return stdout.split('\n').filter(Boolean);
}

/**
 * Splits the package list into chunks of about `bytes` of JSON each (the reference sends
 * ~2500-byte `swbom_package_list_<n>` pieces so no single MQTT message grows with the system).
 */
export function chunkBom(lines: readonly string[], bytes = 2500): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  let size = 0;
  for (const line of lines) {
    const cost = JSON.stringify(line).length + 1;
    if (current.length > 0 && size + cost > bytes) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(line);
    size += cost;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
