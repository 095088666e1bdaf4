/**
 * The second OS-update driver: Mender A/B on Yocto (spec §5.2–5.3). `mender install <file>`
 * writes the inactive partition, the reboot tries it, `mender commit` after a healthy boot keeps
 * it; a reboot without commit falls back. The running artifact's name dates the installed image.
 */
import { InbmError, Status } from '../core/result.js';
import { runCommand } from './command.js';

export type OsFamily = 'debian' | 'yocto' | 'other';

/** Which updater an os-release file calls for: apt on Debian/Ubuntu, Mender on Yocto (Poky). */
export function osFamily(osRelease: string): OsFamily {
  const fields = new Map<string, string>();
  for (const line of osRelease.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) fields.set(m[1]!, m[2]!.replace(/^["']|["']$/g, '').toLowerCase());
  }
  const ids = [fields.get('ID') ?? '', ...(fields.get('ID_LIKE') ?? '').split(/\s+/)];
  if (ids.some((id) => id === 'debian' || id === 'ubuntu')) return 'debian';
  if (ids.includes('poky') || /yocto|poky/.test(fields.get('NAME') ?? '')) return 'yocto';
  return 'other';
}

export const menderInstall = (mender: readonly string[], file: string) => [...mender, 'install', file];
export const menderCommit = (mender: readonly string[]) => [...mender, 'commit'];
export const menderShowArtifact = (mender: readonly string[]) => [...mender, 'show-artifact'];

/** The date in an artifact name ("Release-20200101", "image-2020-01-01-x"), as YYYY-MM-DD. */
export function artifactDate(name: string): string | undefined {
  const m = /(\d{4})-?(\d{2})-?(\d{2})/.exec(name);
  if (!m) return undefined;
  const [, y, mo, d] = m;
  const iso = `${y}-${mo}-${d}`;
  return Number.isNaN(Date.parse(iso)) ? undefined : iso;
}

/** The reference installs only a release newer than the running one (spec §1.8 release_date). */
export function releaseDateError(requested: string | undefined, running: string): InbmError | undefined {
  if (!requested) return undefined;
  const current = artifactDate(running);
  if (!current) return undefined;
  if (requested > current) return undefined;
  return new InbmError(
    Status.INSTALL_FAILED,
    `SOTA: release date ${requested} is not newer than the running artifact ${running} (${current})`,
  );
}

export class MenderDriver {
  constructor(
    private readonly mender: readonly string[],
    private readonly timeoutMs = 30 * 60_000,
  ) {}

  async artifact(): Promise<string> {
    const { stdout } = await runCommand(menderShowArtifact(this.mender), 30_000);
    const name = stdout.trim().split('\n').at(-1)?.trim();
    if (!name) throw new InbmError(Status.INSTALL_FAILED, 'SOTA: mender show-artifact printed nothing');
    return name;
  }

  async install(file: string): Promise<void> {
    await runCommand(menderInstall(this.mender, file), this.timeoutMs);
  }

  async commit(): Promise<void> {
    await runCommand(menderCommit(this.mender), 120_000);
  }
}
