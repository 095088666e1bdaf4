import { readFile } from 'node:fs/promises';
import { type Gate, skippedResult } from './types.js';

export interface NetworkGateOptions {
  routePath?: string;
  /** `networkCheck` from the configuration. */
  enabled: boolean;
}

const RTF_UP = 0x1;

export function networkGate({ routePath = '/proc/net/route', enabled }: NetworkGateOptions): Gate {
  return {
    name: 'network',
    async check() {
      if (!enabled) return skippedResult('network', 'networkCheck is off');
      const iface = defaultRouteIface(await readFile(routePath, 'utf8'));
      const base = { gate: 'network', threshold: 'default route' };
      if (iface === undefined) return { ...base, ok: false, measured: null, message: 'no default route' };
      return { ...base, ok: true, measured: iface, message: `default route via ${iface}` };
    },
  };
}

/** Columns are located by the header line rather than by position, as the kernel names them. */
function defaultRouteIface(text: string): string | undefined {
  const [header, ...rows] = text.split('\n').filter((l) => l.trim() !== '');
  const cols = (header ?? '').trim().split(/\s+/);
  const [iIface, iDest, iFlags] = ['Iface', 'Destination', 'Flags'].map((c) => cols.indexOf(c));
  if (iIface! < 0 || iDest! < 0 || iFlags! < 0) throw new Error('route table has no Iface/Destination/Flags header');
  for (const row of rows) {
    const f = row.trim().split(/\s+/);
    if (f[iDest!] === '00000000' && Number.parseInt(f[iFlags!] ?? '0', 16) & RTF_UP) return f[iIface!];
  }
  return undefined;
}
