import { badManifest } from '../core/result.js';

/** The MQTT broker of the reference caps messages at ~1 MB; we refuse anything larger outright. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** Deepest real manifest is 6 (manifest/ota/type/pota/fota/x); a little headroom, no more. */
export const MAX_DEPTH = 12;

const ENTITY_REF = /&(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});/y;

/**
 * Cheap single pass over the raw text, run before any parser sees it: size, DOCTYPE/ENTITY
 * (billion laughs, XXE), element nesting depth, and entity references other than the five XML
 * ones (the parser would leave them raw instead of failing).
 */
export function checkLimits(xml: string): void {
  // UTF-8 is at most 3 bytes per UTF-16 unit, so most texts skip the exact count.
  if (xml.length * 3 > MAX_MANIFEST_BYTES && Buffer.byteLength(xml, 'utf8') > MAX_MANIFEST_BYTES) {
    throw badManifest(`manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  let depth = 0;
  const n = xml.length;
  let i = xml.indexOf('<');
  let textFrom = 0;
  while (i !== -1 && i < n) {
    checkEntities(xml, textFrom, i);
    const c = xml.charCodeAt(i + 1);
    if (c === 0x21 /* ! */) {
      if (xml.startsWith('<!--', i)) i = skipTo(xml, i + 4, '-->');
      else if (xml.startsWith('<![CDATA[', i)) i = skipTo(xml, i + 9, ']]>');
      else throw badManifest('Forbidden: DOCTYPE and entity declarations are not allowed');
    } else if (c === 0x3f /* ? */) {
      i = skipTo(xml, i + 2, '?>');
    } else if (c === 0x2f /* / */) {
      depth--;
      i = skipTo(xml, i + 2, '>');
    } else {
      const end = endOfTag(xml, i + 1);
      checkEntities(xml, i, end);
      if (xml.charCodeAt(end - 1) !== 0x2f && ++depth > MAX_DEPTH) {
        throw badManifest(`elements are nested deeper than ${MAX_DEPTH} levels`);
      }
      i = end + 1;
    }
    textFrom = i;
    i = xml.indexOf('<', i);
  }
  checkEntities(xml, textFrom, n);
}

function skipTo(xml: string, from: number, token: string): number {
  const at = xml.indexOf(token, from);
  return at === -1 ? xml.length : at + token.length;
}

/** Index of the `>` closing a start tag, honouring quoted attribute values. */
function endOfTag(xml: string, from: number): number {
  let quote = 0;
  for (let j = from; j < xml.length; j++) {
    const c = xml.charCodeAt(j);
    if (quote) {
      if (c === quote) quote = 0;
    } else if (c === 0x22 || c === 0x27) quote = c;
    else if (c === 0x3e) return j;
  }
  return xml.length;
}

function checkEntities(xml: string, from: number, to: number): void {
  let at = xml.indexOf('&', from);
  while (at !== -1 && at < to) {
    ENTITY_REF.lastIndex = at;
    if (!ENTITY_REF.test(xml)) {
      throw badManifest('Forbidden: only the predefined XML entities and character references are allowed');
    }
    at = xml.indexOf('&', at + 1);
  }
}
