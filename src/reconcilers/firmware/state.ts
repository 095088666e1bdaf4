/**
 * The record a firmware update keeps across its reboot: the BIOS it replaced (for the verdict),
 * whether the flash was started (so it is never started twice), and a failure that ended it.
 * One small file per resource, written atomically before each of those facts becomes true.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic.js';
import type { Result } from '../../core/result.js';
import { readJson } from '../../status/files.js';
import type { BiosSnapshot } from './eligibility.js';

export interface FlashState {
  requestId: string;
  before: BiosSnapshot;
  /** Set just before the tool runs or the capsule is placed: from here on it may have changed the firmware. */
  invokedAt?: string;
  invokedBootId?: string;
  /** The flash failed for good; the request ends with this result. */
  failed?: Pick<Result, 'status' | 'message'>;
}

export const flashStatePath = (stateDir: string, name: string) => join(stateDir, `firmware-${name}.json`);

/** The record of `requestId`; a record of an earlier request counts as none. */
export async function readFlashState(path: string, requestId: string): Promise<FlashState | undefined> {
  const state = await readJson<FlashState>(path).catch(() => undefined);
  return state?.requestId === requestId ? state : undefined;
}

export const writeFlashState = (path: string, state: FlashState) => writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`, 0o600);
