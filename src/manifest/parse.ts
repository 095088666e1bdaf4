import { badManifest, InbmError } from '../core/result.js';
import { type Tree, validateRoot } from './grammar.js';
import { ROOTS } from './schema.js';
import { checkManifest } from './semantic.js';
import type { Manifest, ParsedManifest, ScheduleRequest } from './types.js';
import { parseXml } from './xml.js';

/**
 * INBM XML → typed manifest. Throws InbmError(300) naming the element and rule; never anything
 * else (the property tests hold it to that).
 */
export function parseManifest(xml: string): ParsedManifest {
  const { root, tree } = validateRoot(parseXml(xml), ROOTS);
  if (root === 'manifest') {
    const manifest = tree as unknown as Manifest;
    checkManifest(manifest);
    return { root, manifest };
  }
  return { root: 'schedule_request', schedule: parseSchedule(tree) };
}

/** Parses a single `<manifest>`; a schedule_request here is refused. */
export function parseSingleManifest(xml: string): Manifest {
  const parsed = parseManifest(xml);
  if (parsed.root !== 'manifest') throw badManifest('expected <manifest>, got <schedule_request>');
  return parsed.manifest;
}

function parseSchedule(tree: Tree): ScheduleRequest {
  const raw = tree as unknown as {
    request_id: string;
    update_schedule: Array<{ schedule: ScheduleRequest['update_schedule'][number]['schedule']; manifests: { manifest_xml: string[] } }>;
  };
  return {
    request_id: raw.request_id,
    update_schedule: raw.update_schedule.map((u, i) => ({
      schedule: u.schedule,
      manifests: u.manifests.manifest_xml.map((text, j) => {
        try {
          return parseSingleManifest(text);
        } catch (err) {
          if (err instanceof InbmError) {
            throw badManifest(`<schedule_request/update_schedule[${i + 1}]/manifests/manifest_xml[${j + 1}]>: ${err.reason}`);
          }
          throw err;
        }
      }),
    })),
  };
}
