/**
 * Manifest → desired-state documents (or a query). Pure and deterministic: the same manifest
 * and options always give the same documents; credentials come out as separate secrets.
 */
import { badManifest } from '../../core/result.js';
import { parseManifest } from '../../manifest/parse.js';
import type { Manifest, ParsedManifest, ScheduleRequest } from '../../manifest/types.js';
import { translateConfig } from './config.js';
import { Context, type ScheduledJob, type TranslateOptions, type Translation } from './context.js';
import { translateOta } from './ota.js';
import { translateApplicationSource, translateOsSource } from './source.js';

export type { ScheduledJob, TranslateOptions, Translation } from './context.js';

export function translate(parsed: ParsedManifest, options: TranslateOptions): Translation {
  return parsed.root === 'manifest' ? translateManifest(parsed.manifest, options) : translateSchedule(parsed.schedule, options);
}

/** Parse and translate in one call: the path every source of XML takes. */
export function manifestToDesired(xml: string, options: TranslateOptions): Translation {
  return translate(parseManifest(xml), options);
}

export function translateManifest(m: Manifest, options: TranslateOptions): Translation {
  const ctx = new Context(m, options, manifestType(m));
  switch (m.type) {
    case 'ota':
      return translateOta(ctx, m.ota!);
    case 'config':
      return translateConfig(ctx, m.config!);
    case 'source':
      return m.osSource ? translateOsSource(ctx, m.osSource) : translateApplicationSource(ctx, m.applicationSource!);
    case 'cmd':
      switch (m.cmd!) {
        case 'query':
          return { type: 'query', query: { target: 'device', option: m.query!.option } };
        case 'custom':
          return { type: 'custom', data: m.custom!.data };
        default:
          return ctx.documents(
            ctx.document('PowerAction', 'power', { requestId: ctx.requestId, action: m.cmd as 'restart' | 'shutdown' | 'decommission' }),
          );
      }
  }
  throw badManifest(`<manifest/type>: ${String(m.type)} is not handled`);
}

function manifestType(m: Manifest): string {
  if (m.ota) {
    const body = m.ota.type.aota;
    return body ? `ota/aota/${body.app}/${body.cmd}` : `ota/${m.ota.header.type}`;
  }
  if (m.config) return `config/${m.config.cmd}`;
  if (m.osSource) return `source/os/${Object.keys(m.osSource)[0]}`;
  if (m.applicationSource) return `source/application/${Object.keys(m.applicationSource)[0]}`;
  return `cmd/${m.cmd}`;
}

function translateSchedule(s: ScheduleRequest, options: TranslateOptions): Translation {
  const jobs: ScheduledJob[] = s.update_schedule.map((u, i) => {
    const single = (u.schedule.single_schedule ?? []).map((x) => ({
      jobId: x.job_id,
      ...(x.start_time ? { start: x.start_time } : {}),
      ...(x.end_time ? { end: x.end_time } : {}),
    }));
    const repeated = (u.schedule.repeated_schedule ?? []).map((x) => ({
      jobId: x.job_id,
      duration: x.duration,
      cron: [x.cron_minutes, x.cron_hours, x.cron_day_month, x.cron_month, x.cron_day_week].join(' '),
    }));
    // Each embedded manifest is its own one-shot request with a stable identity inside the schedule.
    const requests = u.manifests.map((m, j) => translateManifest(m, { ...options, requestId: `${s.request_id}-${i + 1}-${j + 1}` }));
    return { schedules: { single, repeated }, requests };
  });
  return { type: 'schedule', requestId: s.request_id, jobs };
}
