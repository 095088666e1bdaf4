/**
 * The flash itself, shared by Firmware and PlatformUpdate: the tool check, the download through
 * the shared downloader, the signature, then either the capsule copied to its destination or
 * the vendor tool run as an argument array. The state file is marked just before the first
 * action that can change the firmware, so a restart never starts a second flash; downloaded and
 * extracted files are removed whatever happens.
 */
import { copyFile, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { Logger } from '../../core/log.js';
import { InbmError, Status } from '../../core/result.js';
import { runCommand } from '../../drivers/command.js';
import { extract } from '../../drivers/download/archive.js';
import { download } from '../../drivers/download/fetch.js';
import { checkSignature, loadVerifyKey } from '../../drivers/download/signature.js';
import type { FirmwareProduct } from '../../platform/firmware-db.js';
import type { Target } from './eligibility.js';
import { type FlashState, writeFlashState } from './state.js';

export interface FlashDeps {
  cacheDir: string;
  otaCertFile?: string;
  trusted: () => Promise<string[]>;
  credentials: (secretRef: string) => Promise<{ username: string; password: string }>;
  /** How long the vendor tool may run. */
  toolTimeoutMs?: number;
}

export interface FlashRequest {
  target: Target;
  product: FirmwareProduct;
  guid?: string;
  /** The state file and its record (with the BIOS snapshot) for this request. */
  statePath: string;
  state: FlashState;
  bootId: string;
  log: Logger;
}

const FIRMWARE_EXT = new Set(['.fv', '.cap', '.bio', '.bin']);
const aborted = (reason: string) => new InbmError(Status.INSTALL_FAILED, `Firmware Update Aborted: ${reason}`);
const words = (s: string | undefined) => (s ?? '').split(/\s+/).filter(Boolean);

/** The argument array of a flash: `tool args [guid] file [tooloptions]`. */
export function toolArgv(product: FirmwareProduct, file: string, guid: string | undefined, toolOptions: string | undefined): string[] {
  return [product.tool!, ...words(product.toolArgs), ...(guid ? [guid] : []), file, ...words(toolOptions)];
}

export async function flashFirmware(deps: FlashDeps, req: FlashRequest): Promise<void> {
  const { target, product, log } = req;
  const { source } = target;
  let fetched: string | undefined;
  let unpacked: string | undefined;
  try {
    if (product.tool && product.toolCheckArgs) {
      await runCommand([product.tool, ...words(product.toolCheckArgs)]).catch((err: unknown) => {
        throw aborted(`Firmware tool check failed: ${err instanceof InbmError ? err.reason : String(err)}`);
      });
    }
    let file: string;
    if (source.url) {
      const credentials = source.credentials ? await deps.credentials(source.credentials.secretRef) : undefined;
      fetched = (await download(source.url, { dir: deps.cacheDir, trusted: await deps.trusted(), ...(credentials ? { credentials } : {}) }))
        .path;
      file = fetched;
    } else if (source.path) {
      if (!(await stat(source.path).catch(() => undefined))?.isFile())
        throw new InbmError(Status.NOT_FOUND, `file not found: ${source.path}`);
      file = source.path;
    } else throw aborted('the firmware source has neither url nor path');

    if (deps.otaCertFile && (await stat(deps.otaCertFile).catch(() => undefined))) {
      await checkSignature(file, source.signature, await loadVerifyKey(deps.otaCertFile), source.hashAlgorithm);
    } else log.warn('WARNING: Device not provisioned for signature check.  Skipping signature check.');

    let firmware = file;
    if (!FIRMWARE_EXT.has(extname(file).toLowerCase())) {
      unpacked = await mkdtemp(join(deps.cacheDir, '.fota-'));
      const members = await extract(file, unpacked).catch((err: unknown) => {
        throw aborted(`Invalid File sent: ${err instanceof InbmError ? err.reason : String(err)}`);
      });
      const member = members.find((m) => FIRMWARE_EXT.has(extname(m).toLowerCase()));
      if (!member) throw aborted('the package holds no .fv, .cap, .bio or .bin firmware file');
      firmware = join(unpacked, member);
    }

    // From here on the firmware may change: recorded first, so a restart never flashes again.
    await writeFlashState(req.statePath, { ...req.state, invokedAt: new Date().toISOString(), invokedBootId: req.bootId });
    if (product.destPath) await placeCapsule(firmware, product.destPath);
    else {
      const argv = toolArgv(product, firmware, req.guid, target.toolOptions);
      log.info({ tool: argv[0] }, 'applying firmware');
      await runCommand(argv, deps.toolTimeoutMs ?? 30 * 60_000).catch((err: unknown) => {
        throw aborted(`Error: ${err instanceof InbmError ? err.reason : String(err)}`);
      });
    }
  } catch (err) {
    if (!(err instanceof InbmError && err.retryable)) {
      const failed = err instanceof InbmError ? err.toResult() : aborted(String(err)).toResult();
      await writeFlashState(req.statePath, { ...req.state, failed: { status: failed.status, message: failed.message } });
    }
    throw err;
  } finally {
    if (fetched) await rm(fetched, { force: true });
    if (unpacked) await rm(unpacked, { recursive: true, force: true });
  }
}

/** File-replacement platforms: the capsule goes to the destination (a directory, or the file to replace). */
async function placeCapsule(file: string, dest: string): Promise<void> {
  const isDir = dest.endsWith('/') || (await stat(dest).catch(() => undefined))?.isDirectory();
  const target = isDir ? join(dest, basename(file)) : dest;
  const part = `${target}.inbm-part`;
  try {
    await copyFile(file, part);
    await rename(part, target);
  } catch (err) {
    await rm(part, { force: true });
    throw aborted(`File copy to path failed: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
