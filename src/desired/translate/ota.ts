import { installFailed } from '../../core/result.js';
import type { Fota, Header, Ota, Sota } from '../../manifest/types.js';
import { translateAota } from './aota.js';
import type { Context } from './context.js';
import { hashAlgorithm, isYes, opt, rebootOnlyIfYes, rebootUnlessNo, type Translation } from './context.js';

export function translateOta(ctx: Context, ota: Ota): Translation {
  const { header, type } = ota;
  if (type.aota) return translateAota(ctx, type.aota);
  if (type.fota)
    return ctx.documents(ctx.document('Firmware', 'firmware', { requestId: ctx.requestId, ...firmware(ctx, header, type.fota) }));
  if (type.sota) return ctx.documents(ctx.document('OSUpdate', 'os-update', { requestId: ctx.requestId, ...os(ctx, header, type.sota) }));
  const pota = type.pota!;
  return ctx.documents(
    ctx.document('PlatformUpdate', 'platform-update', {
      requestId: ctx.requestId,
      firmware: firmware(ctx, header, pota.fota),
      os: os(ctx, header, pota.sota),
    }),
  );
}

function firmware(ctx: Context, header: Header, f: Fota) {
  let source: { url?: string; path?: string };
  if (header.repo === 'local') {
    if (!f.path) throw installFailed('FOTA: <path> is required when <repo> is local');
    source = { path: f.path };
  } else {
    if (!f.fetch) throw installFailed('FOTA: <fetch> is required when <repo> is remote');
    source = { url: f.fetch };
  }
  const credentials = ctx.credentials('firmware-download', f.username, f.password);
  return {
    platform: {
      vendor: f.vendor,
      manufacturer: f.manufacturer,
      product: f.product,
      biosVersion: f.biosversion,
      releaseDate: f.releasedate.slice(0, 10),
      ...opt('productVersion', f.productversion),
    },
    source: {
      ...source,
      ...(f.signature ? { signature: f.signature } : {}),
      ...opt('hashAlgorithm', hashAlgorithm(f.sigversion)),
      ...opt('credentials', credentials),
    },
    ...opt('guid', f.guid),
    ...opt('toolOptions', f.tooloptions),
    // The reference's FOTA parser defaults deviceReboot to "yes".
    reboot: rebootOnlyIfYes(f.deviceReboot, true),
  };
}

function os(ctx: Context, header: Header, s: Sota) {
  const credentials = ctx.credentials('os-update-download', s.username, s.password);
  const where = header.repo === 'local' && s.path ? { path: s.path } : s.fetch ? { url: s.fetch } : undefined;
  const source = where ? { ...where, ...(s.signature ? { signature: s.signature } : {}), ...opt('credentials', credentials) } : undefined;
  const mode = s.mode ?? 'full';
  return {
    mode,
    packages: s.package_list ? s.package_list.split(',') : [],
    ...opt('source', source),
    ...opt('releaseDate', s.release_date?.slice(0, 10)),
    // The reference never reboots after download-only (or a cancel), whatever deviceReboot says.
    reboot: mode === 'full' || mode === 'no-download' ? rebootUnlessNo(s.deviceReboot) : false,
    logToFile: isYes(s['cmd@logtofile']),
  };
}
