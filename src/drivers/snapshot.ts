/**
 * A btrfs snapshot of the root before an OS update, and the way back to it: snapper when it is
 * set up, plain `btrfs subvolume snapshot` otherwise. A rollback only prepares the next boot
 * (snapper rollback / set-default, or a settable command); the reboot makes it real.
 */
import { access, constants, mkdir } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { InbmError, Status } from '../core/result.js';
import { runCommand } from './command.js';

export type Snapshot = { tool: 'snapper'; number: number; description: string } | { tool: 'btrfs'; path: string; subvolume: string };

export interface SnapshotOptions {
  /** The subvolume that holds the root filesystem; absent = no plain-btrfs snapshots. */
  subvolume?: string;
  /** Where plain snapshots go (same btrfs filesystem); default `<subvolume>/.snapshots`. */
  snapshotDir?: string;
  /** snapper with its config, e.g. `['snapper', '-c', 'root']`, preferred when set; 'detect' = if installed. */
  snapper?: readonly string[] | 'detect';
  /** Makes the next boot use a plain snapshot: "{snapshot}" and "{subvolume}" are replaced. */
  rollback?: readonly string[];
  timeoutMs?: number;
}

export const btrfsShow = (subvolume: string) => ['btrfs', 'subvolume', 'show', subvolume];
export const btrfsSnapshot = (from: string, to: string, readOnly: boolean) => [
  'btrfs',
  'subvolume',
  'snapshot',
  ...(readOnly ? ['-r'] : []),
  from,
  to,
];
export const btrfsDelete = (path: string) => ['btrfs', 'subvolume', 'delete', path];
export const btrfsSetDefault = (path: string) => ['btrfs', 'subvolume', 'set-default', path];
export const snapperCreate = (snapper: readonly string[], description: string) => [
  ...snapper,
  'create',
  '--print-number',
  '--description',
  description,
];
export const snapperList = (snapper: readonly string[]) => [...snapper, '--csvout', 'list', '--columns', 'number,description'];
export const snapperRollback = (snapper: readonly string[], n: number) => [...snapper, 'rollback', String(n)];
export const snapperDelete = (snapper: readonly string[], n: number) => [...snapper, 'delete', String(n)];

/** The snapshot's number for `description` in `snapper --csvout list` output, if it is there. */
export function findSnapper(csv: string, description: string): number | undefined {
  for (const line of csv.split('\n').slice(1)) {
    const comma = line.indexOf(',');
    if (comma > 0 && line.slice(comma + 1).trim() === description) return Number(line.slice(0, comma));
  }
  return undefined;
}

const pathOf = (o: SnapshotOptions, name: string) => join(o.snapshotDir ?? join(o.subvolume!, '.snapshots'), name);
const fail = (what: string, err: unknown) =>
  new InbmError(Status.INSTALL_FAILED, `${what}: ${err instanceof InbmError ? err.reason : String(err)}`);

export class SnapshotDriver {
  private readonly o: Omit<SnapshotOptions, 'snapper'> & { snapper?: readonly string[] };
  private detect: boolean;

  constructor(options: SnapshotOptions) {
    const { snapper, ...rest } = options;
    this.detect = snapper === 'detect';
    this.o = snapper && snapper !== 'detect' ? { ...rest, snapper } : rest;
  }

  /** Looks snapper up once, at first use (PATH of this machine). */
  private async resolve(): Promise<void> {
    if (!this.detect) return;
    this.detect = false;
    const found = await detectSnapper();
    if (found) this.o.snapper = found;
  }

  private run(argv: readonly string[]) {
    return runCommand(argv, this.o.timeoutMs ?? 120_000);
  }

  /** Why no snapshot can be taken here, or undefined when one can. */
  async unsupported(): Promise<string | undefined> {
    await this.resolve();
    if (this.o.snapper)
      return this.run(snapperList(this.o.snapper)).then(
        () => undefined,
        (err: unknown) => `snapper cannot list snapshots (${err instanceof InbmError ? err.reason : String(err)})`,
      );
    if (!this.o.subvolume) return 'no btrfs root subvolume is set';
    return this.run(btrfsShow(this.o.subvolume)).then(
      () => undefined,
      (err: unknown) => `${this.o.subvolume} is not a btrfs subvolume (${err instanceof InbmError ? err.reason : String(err)})`,
    );
  }

  /** Takes snapshot `name`, or finds the one an interrupted earlier attempt took under that name. */
  async take(name: string): Promise<Snapshot> {
    await this.resolve();
    const { snapper, subvolume } = this.o;
    if (snapper) {
      const found = findSnapper((await this.run(snapperList(snapper))).stdout, name);
      if (found !== undefined) return { tool: 'snapper', number: found, description: name };
      const { stdout } = await this.run(snapperCreate(snapper, name)).catch((err: unknown) => {
        throw fail('snapper create', err);
      });
      const number = Number(stdout.trim());
      if (!Number.isInteger(number)) throw new InbmError(Status.INSTALL_FAILED, `snapper create printed no number: ${stdout.slice(0, 80)}`);
      return { tool: 'snapper', number, description: name };
    }
    if (!subvolume) throw new InbmError(Status.INSTALL_FAILED, 'no btrfs root subvolume is set');
    const path = pathOf(this.o, name);
    if (!(await this.exists({ tool: 'btrfs', path, subvolume }))) {
      await mkdir(pathOf(this.o, ''), { recursive: true });
      // Read-only: the rollback target must still be what the root was before the update.
      await this.run(btrfsSnapshot(subvolume, path, true)).catch((err: unknown) => {
        throw fail('btrfs snapshot', err);
      });
    }
    return { tool: 'btrfs', path, subvolume };
  }

  async exists(s: Snapshot): Promise<boolean> {
    if (s.tool === 'snapper')
      return findSnapper((await this.run(snapperList(this.o.snapper ?? ['snapper']))).stdout, s.description) !== undefined;
    return this.run(btrfsShow(s.path)).then(
      () => true,
      () => false,
    );
  }

  /** Makes the next boot start from the snapshot. */
  async rollback(s: Snapshot): Promise<void> {
    if (s.tool === 'snapper') {
      await this.run(snapperRollback(this.o.snapper ?? ['snapper'], s.number)).catch((err: unknown) => {
        throw fail('snapper rollback', err);
      });
      return;
    }
    if (this.o.rollback) {
      const argv = this.o.rollback.map((a) => a.replaceAll('{snapshot}', s.path).replaceAll('{subvolume}', s.subvolume));
      await this.run(argv).catch((err: unknown) => {
        throw fail('rollback command', err);
      });
      return;
    }
    // A writable copy of the read-only snapshot becomes the default subvolume the next boot mounts.
    const target = `${s.path}-rollback`;
    if (!(await this.exists({ ...s, path: target }))) await this.run(btrfsSnapshot(s.path, target, false));
    await this.run(btrfsSetDefault(target)).catch((err: unknown) => {
      throw fail('btrfs set-default', err);
    });
  }

  /** Commit: the update is kept, the snapshot goes. Deleting one already gone is not an error. */
  async remove(s: Snapshot): Promise<void> {
    if (!(await this.exists(s))) return;
    const argv = s.tool === 'snapper' ? snapperDelete(this.o.snapper ?? ['snapper'], s.number) : btrfsDelete(s.path);
    await this.run(argv).catch((err: unknown) => {
      throw fail('snapshot delete', err);
    });
  }
}

/** snapper's argv when the tool is installed on this machine (never looked up under --root). */
export async function detectSnapper(path = process.env.PATH ?? ''): Promise<string[] | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const ok = await access(join(dir, 'snapper'), constants.X_OK).then(
      () => true,
      () => false,
    );
    if (ok) return ['snapper', '-c', 'root'];
  }
  return undefined;
}
