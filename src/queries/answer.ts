/**
 * Answers the requests that read instead of change (spec §1): device query, config get, docker
 * stats/list, compose list. The data is the result's message (JSON where it is structured).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InbmError, ok, type Result, resultOf, Status } from '../core/result.js';
import type { Query } from '../desired/query.js';
import type { ComposeEngine } from '../drivers/compose-state.js';
import type { DockerDriver } from '../drivers/docker.js';
import { readConfValues } from '../reconcilers/configuration/index.js';
import { listApplicationSources, listOsSources } from '../reconcilers/package-source/list.js';

export interface QueryDeps {
  confFile: string;
  stateDir: string;
  docker: DockerDriver;
  compose: ComposeEngine;
  /** /etc/apt/sources.list and /etc/apt/sources.list.d, for the source list queries. */
  aptSourcesList?: string;
  aptSourcesDir?: string;
}

/** Inventory sections each query option keeps (the reference's hw/fw/os/version filters). */
const SECTIONS: Record<string, string[]> = {
  all: ['firmware', 'os', 'hardware', 'agent'],
  hw: ['hardware'],
  fw: ['firmware'],
  os: ['os'],
  version: ['agent'],
  status: ['agent'],
  guid: ['firmware'],
  security: ['os'],
  swbom: ['os'],
};

export async function answerQuery(q: Query, deps: QueryDeps): Promise<Result> {
  try {
    switch (q.target) {
      case 'device': {
        const inventory = JSON.parse(await readFile(join(deps.stateDir, 'inventory.json'), 'utf8')) as Record<string, unknown>;
        const picked = Object.fromEntries((SECTIONS[q.option] ?? []).map((k) => [k, inventory[k]]));
        return ok(JSON.stringify({ queryResult: picked }));
      }
      case 'config': {
        const values = await readConfValues(deps.confFile, q.keys).catch((err: unknown) => {
          throw new InbmError(
            Status.INSTALL_FAILED,
            `Configuration get_element command: FAILED: ${err instanceof InbmError ? err.reason : String(err)}`,
          );
        });
        return ok(
          Object.entries(values)
            .map(([k, v]) => `${k}:${v.replaceAll('\n', ' ')}`)
            .join(';'),
        );
      }
      case 'containers':
        if (q.app === 'compose') {
          const stacks = await deps.compose.byLabel('com.docker.compose.project', q.name);
          return ok(
            JSON.stringify({ composeList: stacks.map((c) => ({ name: c.name, service: c.service, image: c.image, running: c.running })) }),
          );
        }
        return ok(
          JSON.stringify(
            q.what === 'stats' ? { containerStats: await deps.docker.stats() } : { containerList: await deps.docker.list(q.name) },
          ),
        );
      case 'sources': {
        const list = q.source === 'os' ? deps.aptSourcesList : deps.aptSourcesDir;
        if (!list) throw new InbmError(Status.INSTALL_FAILED, 'Error changing sources files: no sources path is set');
        return ok(await (q.source === 'os' ? listOsSources(list) : listApplicationSources(list)));
      }
    }
  } catch (err) {
    return resultOf(err);
  }
}
