import type { ApplicationSource, OsSource } from '../../manifest/types.js';
import { shortHash, toName } from '../names.js';
import type { Context, Translation } from './context.js';

export function translateOsSource(ctx: Context, s: OsSource): Translation {
  if (s.list !== undefined) return { type: 'query', query: { target: 'sources', source: 'os' } };
  if (s.update)
    return ctx.documents(ctx.document('PackageSource', 'os-sources', { target: 'os', ensure: 'exact', lines: s.update.repos.source_pkg }));
  const lines = (s.add ?? s.remove)!.repos.source_pkg;
  // add and remove of the same lines share a name, so a later remove replaces the earlier add.
  return ctx.documents(
    ctx.document('PackageSource', `os-sources-${shortHash(lines.join('\n'))}`, {
      target: 'os',
      ensure: s.add ? 'present' : 'absent',
      lines,
    }),
  );
}

export function translateApplicationSource(ctx: Context, s: ApplicationSource): Translation {
  if (s.list !== undefined) return { type: 'query', query: { target: 'sources', source: 'application' } };
  if (s.remove) {
    const { filename } = s.remove.repo;
    return ctx.documents(
      ctx.document('PackageSource', toName('app-source', filename), {
        target: 'application',
        ensure: 'absent',
        filename,
        ...(s.remove.gpg ? { gpgKey: { name: s.remove.gpg.keyname } } : {}),
      }),
    );
  }
  const add = s.add ?? s.update!;
  const gpg = s.add?.gpg;
  return ctx.documents(
    ctx.document('PackageSource', toName('app-source', add.repo.filename), {
      target: 'application',
      ensure: 'present',
      filename: add.repo.filename,
      lines: add.repo.repos.source_pkg,
      ...(gpg ? { gpgKey: { url: gpg.uri, name: gpg.keyname } } : {}),
    }),
  );
}
