/**
 * Keys, types and ranges of `/etc/intel_manageability.conf`, equivalent to the reference XSD
 * (`iotg_inb_schema.xsd`, inbm-reference.md §3.1). Every value arrives as element text, so each
 * schema takes a string and yields the typed value.
 */
import { z } from 'zod';

/** XSD `MaxInteger`; well below 2^53, so Number() is exact for anything in range. */
const MAX_INTEGER = 1_000_000_000_000;
const URL_MAX = 700;
const PATH_MAX = 1500;

const got = (raw: string) => `got ${JSON.stringify(raw)}`;

function int(min: number, max: number) {
  return z.string().transform((raw, ctx) => {
    // xs:integer collapses surrounding whitespace; digits only, so "1.5", "1e2" and "-1" fail.
    const text = raw.trim();
    const n = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN;
    if (n >= min && n <= max) return n;
    ctx.addIssue({ code: 'custom', message: `must be an integer between ${min} and ${max}, ${got(raw)}` });
    return z.NEVER;
  });
}

// xs:boolean would also take 1/0; the reference only ever writes and reads true/false.
const bool = z.string().transform((raw, ctx) => {
  const text = raw.trim();
  if (text === 'true' || text === 'false') return text === 'true';
  ctx.addIssue({ code: 'custom', message: `must be true or false, ${got(raw)}` });
  return z.NEVER;
});

// An xs:string enumeration keeps whitespace, so " WARN" is not WARN.
function oneOf<const T extends string>(values: readonly T[]) {
  return z.string().transform((raw, ctx) => {
    if ((values as readonly string[]).includes(raw)) return raw as T;
    ctx.addIssue({ code: 'custom', message: `must be one of ${values.join(', ')}, ${got(raw)}` });
    return z.NEVER;
  });
}

function text(max: number) {
  return z.string().refine((raw) => raw.length <= max, { error: `must be at most ${max} characters` });
}

/**
 * xs:list: whitespace-separated items. The XSD types items as anyURI, which accepts almost
 * anything; trusted repositories must also parse as URLs because the download check matches on
 * scheme, host and port, and an entry it cannot parse would silently trust nothing.
 */
function list(urls: boolean) {
  return z.string().transform((raw, ctx) => {
    const items = raw.split(/\s+/).filter(Boolean);
    for (const item of items) {
      const problem =
        item.length > URL_MAX ? `entries must be at most ${URL_MAX} characters` : urls && !URL.canParse(item) ? 'entries must be URLs' : '';
      if (problem) {
        ctx.addIssue({ code: 'custom', message: `${problem}, ${got(item.slice(0, 80))}` });
        return z.NEVER;
      }
    }
    return items;
  });
}

export const confSchema = z.strictObject({
  all: z.strictObject({ dbs: oneOf(['ON', 'OFF', 'WARN', 'on', 'off', 'warn']) }),
  telemetry: z.strictObject({
    collectionIntervalSeconds: int(30, 120),
    publishIntervalSeconds: int(120, 480),
    maxCacheSize: int(50, 200),
    containerHealthIntervalSeconds: int(300, 1800),
    enableSwBom: bool.optional(),
    swBomIntervalHours: int(1, 168).optional(),
  }),
  diagnostic: z.strictObject({
    minStorageMB: int(0, MAX_INTEGER),
    minMemoryMB: int(0, MAX_INTEGER),
    minPowerPercent: int(0, MAX_INTEGER),
    sotaSW: list(false),
    dockerBenchSecurityIntervalSeconds: int(0, MAX_INTEGER).optional(),
    networkCheck: bool.optional(),
  }),
  dispatcher: z.strictObject({
    dbsRemoveImageOnFailedContainer: bool,
    proceedWithoutCslmStatusResponse: bool.optional(),
    trustedRepositories: list(true),
  }),
  orchestrator: z
    .strictObject({
      name: z.string(),
      orchestratorResponse: bool.optional(),
      ip: text(PATH_MAX).optional(),
      token: text(PATH_MAX).optional(),
      certFile: text(PATH_MAX).optional(),
    })
    .optional(),
  sota: z.strictObject({ ubuntuAptSource: list(false).optional(), proceedWithoutRollback: bool }),
});

/** The parsed file: section → key → typed value (lists are arrays of entries). */
export type Conf = z.output<typeof confSchema>;

/** The XSD sequence; order matters in the file. */
export const SECTIONS = ['all', 'telemetry', 'diagnostic', 'dispatcher', 'orchestrator', 'sota'] as const;
export type Section = (typeof SECTIONS)[number];

/** XML attributes rather than child elements, so they are not addressable as leaf keys. */
export const SECTION_ATTRS: Record<Section, readonly string[]> = {
  all: [],
  telemetry: [],
  diagnostic: [],
  dispatcher: [],
  orchestrator: ['name'],
  sota: [],
};

/** Lists that take append/remove (reference §3.1); ubuntuAptSource is a list but deprecated. */
export const APPENDABLE_KEYS: readonly string[] = ['sotaSW', 'trustedRepositories'];

function shapeOf(section: Section): Record<string, unknown> {
  const schema = confSchema.shape[section];
  return (schema instanceof z.ZodOptional ? schema.unwrap() : schema).shape;
}

/** Child elements of each section, in the order the file is written. */
export const SECTION_KEYS = {} as Record<Section, readonly string[]>;
for (const s of SECTIONS) SECTION_KEYS[s] = Object.keys(shapeOf(s)).filter((k) => !SECTION_ATTRS[s].includes(k));

// Leaf tags are unique across sections, which is what lets the reference address keys by tag alone.
const SECTION_OF = new Map<string, Section>(SECTIONS.flatMap((s) => SECTION_KEYS[s].map((k) => [k, s] as const)));

/** The section holding a leaf key (case-sensitive), or undefined for an unknown key. */
export function keySection(key: string): Section | undefined {
  return SECTION_OF.get(key);
}
