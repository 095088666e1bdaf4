/**
 * The reference's persistent update status record (`/var/log/inbm-update-status.log`): one JSON
 * object that FOTA/SOTA/POTA set to PENDING before their reboot and rewrite to SUCCESS or FAIL
 * after it. Kept for tools that read it; our own status files carry more.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic.js';
import { readJson } from './files.js';

export type UpdateType = 'aota' | 'fota' | 'sota' | 'pota';
export type UpdateState = 'SUCCESS' | 'FAIL' | 'PENDING' | 'NO_UPDATE_AVAILABLE';

export interface UpdateRecord {
  Status: UpdateState;
  Type: UpdateType;
  /** `YYYY-mm-dd HH:MM:SS`, UTC */
  Time: string;
  /** What was asked, without secrets (a redacted manifest or the document spec as JSON). */
  Metadata: string;
  Error: string;
  Version: 'v1';
}

export const updateRecordPath = (stateDir: string) => join(stateDir, 'update-status.json');

const stamp = (d: Date) => d.toISOString().slice(0, 19).replace('T', ' ');

export async function writeUpdateRecord(
  stateDir: string,
  rec: { status: UpdateState; type: UpdateType; metadata: string; error?: string },
  now = new Date(),
): Promise<void> {
  const record: UpdateRecord = {
    Status: rec.status,
    Type: rec.type,
    Time: stamp(now),
    Metadata: rec.metadata,
    Error: rec.error ?? '',
    Version: 'v1',
  };
  await writeFileAtomic(updateRecordPath(stateDir), `${JSON.stringify(record)}\n`);
}

export const readUpdateRecord = (stateDir: string) => readJson<UpdateRecord>(updateRecordPath(stateDir));
