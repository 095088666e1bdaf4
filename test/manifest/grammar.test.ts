import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InbmError } from '../../src/core/result.js';
import { MAX_DEPTH, MAX_MANIFEST_BYTES } from '../../src/manifest/limits.js';
import { parseManifest } from '../../src/manifest/parse.js';

const ota = (header: string, body: string) =>
  `<manifest><type>ota</type><ota><header>${header}</header><type>${body}</type></ota></manifest>`;
const aota = (inner: string, attrs = " name='x'") => ota('<type>aota</type><repo>remote</repo>', `<aota${attrs}>${inner}</aota>`);
const sota = (inner: string) => ota('<type>sota</type><repo>remote</repo>', `<sota>${inner}</sota>`);
const FOTA_REQ =
  '<biosversion>1</biosversion><vendor>v</vendor><manufacturer>m</manufacturer><product>p</product><releasedate>2024-01-31</releasedate>';
const fota = (inner: string, attrs = " name='f'") => ota('<type>fota</type><repo>remote</repo>', `<fota${attrs}>${inner}</fota>`);
const cmd = (c: string, extra = '') => `<manifest><type>cmd</type><cmd>${c}</cmd>${extra}</manifest>`;

function refused(xml: string, reason: RegExp): void {
  assert.throws(
    () => parseManifest(xml),
    (e: unknown) => {
      assert.ok(e instanceof InbmError, `not an InbmError: ${e}`);
      assert.equal(e.status, 300);
      assert.match(e.reason, reason);
      return true;
    },
  );
}
const accepted = (xml: string) => assert.doesNotThrow(() => parseManifest(xml));

describe('grammar equivalent to the reference XSD', () => {
  it('a sequence keeps its order; xs:all takes any order', () => {
    refused('<manifest><cmd>restart</cmd><type>cmd</type></manifest>', /missing required element <type> before <cmd>|out of order/);
    accepted(ota('<repo>remote</repo><type>aota</type>', '<aota><app>docker</app><cmd>stats</cmd></aota>'));
  });
  it('each element at most once', () => {
    refused(aota('<cmd>stats</cmd><cmd>stats</cmd><app>docker</app>'), /<cmd> may appear at most once/);
    refused(ota('<type>aota</type><type>aota</type><repo>remote</repo>', '<aota><cmd>stats</cmd><app>docker</app></aota>'), /at most once/);
  });
  it('required elements and attributes', () => {
    refused(aota('<app>docker</app>'), /missing required element <cmd>/);
    refused(fota(FOTA_REQ, ''), /attribute "name" is required/);
    accepted(fota(`${FOTA_REQ}<fetch>https://h/x</fetch>`, " name=''"));
    refused(fota(`${FOTA_REQ}<fetch>https://h/x</fetch>`, " name='a' extra='b'"), /attribute "extra" is not allowed/);
  });
  it('enumerations are exact: no trimming, no case folding', () => {
    refused(cmd(' restart'), /value " restart" is not one of/);
    refused(cmd('Restart'), /is not one of/);
    refused(sota('<cmd logtofile="yes">update</cmd>'), /logtofile.*is not one of/);
    accepted(sota('<cmd logtofile="Y">update</cmd>'));
  });
  it('length types count characters', () => {
    accepted(aota(`<cmd>pull</cmd><app>docker</app><containerTag>${'é'.repeat(200)}</containerTag>`));
    refused(aota(`<cmd>pull</cmd><app>docker</app><containerTag>${'a'.repeat(201)}</containerTag>`), /containerTag>: longer than 200/);
    refused(
      ota(`<id>${'x'.repeat(51)}</id><type>aota</type><repo>remote</repo>`, '<aota><cmd>stats</cmd><app>docker</app></aota>'),
      /header\/id>: longer than 50/,
    );
  });
  it('decimal versions ≥ 0, as xs:decimal', () => {
    for (const v of ['1.0', '0', ' 2.5 ', '.5', '+3']) accepted(aota(`<cmd>load</cmd><app>docker</app><version>${v}</version>`));
    for (const v of ['0.7.6', '-1', '1e3', '', 'one']) refused(aota(`<cmd>load</cmd><app>docker</app><version>${v}</version>`), /version>/);
  });
  it('sigversion is 256 or 384 by value', () => {
    accepted(fota(`${FOTA_REQ}<sigversion>384.0</sigversion>`));
    refused(fota(`${FOTA_REQ}<sigversion>512</sigversion>`), /sigversion>: must be one of 256, 384/);
  });
  it('xs:date with real calendar days', () => {
    for (const d of ['2024-02-29', '2024-01-31Z', '2024-01-31+05:30']) accepted(fota(FOTA_REQ.replace('2024-01-31', d)));
    for (const d of ['2023-02-29', '2024-13-01', '2024-1-01', '01/31/2024', '2024-01-31T00:00:00']) {
      refused(fota(FOTA_REQ.replace('2024-01-31', d)), /releasedate>: .* is not a date/);
    }
  });
  it('GUID pattern', () => {
    accepted(fota(`${FOTA_REQ}<guid>6B29FC40-CA47-1067-B31D-00DD010662DA</guid>`));
    refused(fota(`${FOTA_REQ}<guid>6B29FC40CA471067B31D00DD010662DA</guid>`), /guid>: .* is not a GUID/);
  });
  it('package list pattern, then lowercase names only', () => {
    accepted(sota('<cmd>update</cmd><package_list>hello,cowsay,libfoo2.0+x</package_list>'));
    accepted(sota('<cmd>update</cmd><package_list></package_list>'));
    refused(sota('<cmd>update</cmd><package_list>hello, cowsay</package_list>'), /package_list>: .* is not a comma-separated package list/);
    refused(sota('<cmd>update</cmd><package_list>Hello</package_list>'), /"Hello" is not a valid package name/);
    refused(sota('<cmd>update</cmd><package_list>libc6:amd64</package_list>'), /"libc6:amd64" is not a valid package name/);
  });
  it('text is not allowed where elements are expected, elements not where text is', () => {
    refused(aota('junk<cmd>stats</cmd><app>docker</app>'), /text is not allowed/);
    refused(cmd('<x/>'), /must hold text only/);
  });
  it('unknown elements and roots are refused', () => {
    refused(aota('<cmd>stats</cmd><app>docker</app><hash_algorithm>384</hash_algorithm>'), /unexpected element <hash_algorithm>/);
    refused('<Manifest><type>cmd</type></Manifest>', /unknown root element <Manifest>/);
    refused('<manifest><type>cmd</type><cmd>restart</cmd></manifest><manifest/>', /more than one root/);
  });
});

describe('semantic checks after the schema', () => {
  it('header type agrees with the body', () => {
    refused(
      ota('<type>fota</type><repo>remote</repo>', '<aota><cmd>stats</cmd><app>docker</app></aota>'),
      /header\/type> is fota but <ota\/type> holds <aota>/,
    );
  });
  it('the envelope holds what its type needs and nothing else', () => {
    refused('<manifest><type>ota</type></manifest>', /<type> is ota but <ota> is missing/);
    refused(cmd('query'), /<cmd> is query but <query> is missing/);
    refused(cmd('restart', '<custom><data>x</data></custom>'), /<custom> does not belong/);
    refused('<manifest><type>source</type></manifest>', /neither <osSource> nor <applicationSource>/);
  });
  it('config cmd agrees with the configtype child', () => {
    const config = (c: string, child: string) =>
      `<manifest><type>config</type><config><cmd>${c}</cmd><configtype><${child}><path>sotaSW:x</path></${child}></configtype></config></manifest>`;
    accepted(config('append', 'append'));
    refused(config('append', 'remove'), /<config\/cmd> is append but <config\/configtype> holds <remove>/);
    refused(config('set_element', 'get'), /expected <set>/);
  });
  it('fetch schemes are http, https, file, ftp', () => {
    for (const url of ['http://h/x', 'https://h/x', 'file:///var/cache/x', 'ftp://h/x', 'relative/path']) {
      accepted(aota(`<cmd>update</cmd><app>application</app><fetch>${url}</fetch>`));
    }
    refused(aota('<cmd>update</cmd><app>application</app><fetch>gopher://h/x</fetch>'), /scheme "gopher" is not allowed/);
    refused(aota('<cmd>update</cmd><app>application</app><fetch>http://h/x%00.deb</fetch>'), /NUL/);
  });
  it('username and password together, and only over https', () => {
    accepted(aota('<cmd>update</cmd><app>application</app><fetch>https://h/x</fetch><username>u</username><password>p</password>'));
    refused(aota('<cmd>update</cmd><app>application</app><fetch>https://h/x</fetch><username>u</username>'), /together/);
    refused(
      aota('<cmd>update</cmd><app>application</app><fetch>http://h/x</fetch><username>u</username><password>p</password>'),
      /only sent over https/,
    );
    refused(sota('<cmd>update</cmd><fetch>ftp://h/x</fetch><username>u</username><password>p</password>'), /only sent over https/);
  });
  it('sota upgrade and app btrfs are refused', () => {
    refused(sota('<cmd>upgrade</cmd>'), /upgrade is no longer supported/);
    refused(aota('<cmd>update</cmd><app>btrfs</app>'), /btrfs is not a supported application type/);
  });
});

describe('limits before parsing', () => {
  it('any DOCTYPE is refused, even without entities', () => {
    refused('<!DOCTYPE manifest><manifest><type>cmd</type><cmd>restart</cmd></manifest>', /Forbidden/);
    refused('<!DOCTYPE m [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><manifest><type>cmd</type><cmd>&b;</cmd></manifest>', /Forbidden/);
  });
  it('undeclared entity references are refused; the five predefined and numeric ones decode', () => {
    refused(cmd('&nbsp;restart'), /Forbidden/);
    const parsed = parseManifest('<manifest><type>cmd</type><cmd>custom</cmd><custom><data>a&amp;b&#x3c;&#62;</data></custom></manifest>');
    assert.equal(parsed.root === 'manifest' && parsed.manifest.custom?.data, 'a&b<>');
  });
  it(`manifests over ${MAX_MANIFEST_BYTES} bytes are refused`, () => {
    refused(cmd('custom', `<custom><data>x</data></custom><!--${'x'.repeat(MAX_MANIFEST_BYTES)}-->`), /larger than/);
  });
  it(`nesting deeper than ${MAX_DEPTH} is refused before parsing`, () => {
    const deep = `${'<a>'.repeat(MAX_DEPTH + 1)}${'</a>'.repeat(MAX_DEPTH + 1)}`;
    refused(`<manifest><type>cmd</type>${deep}</manifest>`, /nested deeper than/);
    refused(`<manifest>${'<a>'.repeat(100000)}`, /nested deeper than/);
  });
  it('not well-formed XML names the line', () => {
    refused('<manifest>\n<type>cmd</type>\n<cmd>restart</cmd>\n</manifes>', /not well-formed XML at line \d/);
  });
  it('schedule requests validate every embedded manifest', () => {
    const wrap = (inner: string) =>
      `<schedule_request><request_id>4324a262-b7d1-46a7-b8cc-84d934c3983f</request_id><update_schedule><schedule><single_schedule><job_id>swupd-939fe48c-32da-40eb-a00f-acfdb43a5d6d</job_id></single_schedule></schedule><manifests><manifest_xml><![CDATA[${inner}]]></manifest_xml></manifests></update_schedule></schedule_request>`;
    accepted(wrap(cmd('restart')));
    refused(wrap(cmd('reboot')), /update_schedule\[1\]\/manifests\/manifest_xml\[1\]>: <manifest\/cmd>: value "reboot"/);
    refused(wrap('<!DOCTYPE x><manifest/>'), /manifest_xml\[1\]>: Forbidden/);
  });
});
