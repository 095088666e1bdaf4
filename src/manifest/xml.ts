import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { badManifest } from '../core/result.js';
import { checkLimits } from './limits.js';

/** One element as fast-xml-parser's preserveOrder mode gives it: `{ [tag]: children, ':@'?: attrs }`. */
export type XmlNode = Record<string, unknown>;

// Values stay strings (its defaults turn 1.0 into 1), attributes are kept, text is not trimmed
// so enumerations compare exactly, and document order is preserved so sequences can be checked.
const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  // Only numeric character references reach this point (checkLimits refuses other names).
  htmlEntities: true,
});

/** Limits, well-formedness, then parse. Returns the top-level nodes in document order. */
export function parseXml(xml: string): XmlNode[] {
  checkLimits(xml);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw badManifest(`not well-formed XML at line ${valid.err.line}: ${valid.err.msg}`);
  }
  try {
    return parser.parse(xml) as XmlNode[];
  } catch (err) {
    throw badManifest(`not well-formed XML: ${(err as Error).message}`);
  }
}

export const ATTRS = ':@';
export const TEXT = '#text';

/** The tag name of a preserveOrder node (its only key besides the attribute bag). */
export function tagOf(node: XmlNode): string {
  for (const key in node) if (key !== ATTRS) return key;
  return '';
}
