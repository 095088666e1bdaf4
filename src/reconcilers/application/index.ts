/**
 * ApplicationPackage: a .deb fetched from a trusted repository, signature checked when an OTA
 * certificate is provisioned, installed with the settable install command (dpkg -i), once per
 * requestId; the device reboots only when the document says so.
 */
import { rm, stat } from 'node:fs/promises';
import type { JournalView } from '../../controller/journal.js';
import type { Plan, Reconciler, Step } from '../../controller/types.js';
import { InbmError, ok, Status } from '../../core/result.js';
import type { DocumentOf } from '../../desired/kinds/index.js';
import { runCommand } from '../../drivers/command.js';
import { download } from '../../drivers/download/fetch.js';
import { checkSignature, loadVerifyKey } from '../../drivers/download/signature.js';

type ApplicationPackage = DocumentOf<'ApplicationPackage'>;

export interface ApplicationOptions {
  cacheDir: string;
  /** e.g. [dpkg, -i, "{file}"]; unset = refused (never guessed under --root) */
  install?: readonly string[];
  reboot?: readonly string[];
  otaCertFile?: string;
  /** Trusted repositories, read fresh from the configuration file. */
  trusted: () => Promise<string[]>;
  /** Download credentials by secret name. */
  credentials: (secretRef: string) => Promise<{ username: string; password: string }>;
}

export type ApplicationStep = (Step & { type: 'install' }) | (Step & { type: 'reboot'; argv: readonly string[] });

export interface ApplicationObserved {
  completed?: { status: number; message: string };
  /** The reboot step began in an earlier boot than this one: the device has rebooted since. */
  rebooted?: boolean;
}

const SUCCESS = 'AOTA application update COMMAND SUCCESSFUL';

/** Pure: install once per requestId, then reboot if asked. */
export function planApplication(
  doc: ApplicationPackage | undefined,
  o: ApplicationObserved,
  opts: Pick<ApplicationOptions, 'install' | 'reboot'>,
): Plan<ApplicationStep> {
  if (!doc) return { steps: [], outcome: { phase: 'Ready', reason: 'NotManaged', message: 'document removed; package left installed' } };
  const { requestId } = doc.spec;
  if (o.completed) {
    return {
      steps: [],
      outcome: { phase: o.completed.status === 200 ? 'Ready' : 'Failed', reason: 'Completed', message: o.completed.message },
    };
  }
  const refuse = (reason: string): Plan<ApplicationStep> => {
    const result = new InbmError(Status.INSTALL_FAILED, `AOTA application update FAILED: ${reason}`).toResult();
    return {
      steps: [],
      complete: { requestId, result },
      outcome: { phase: 'Stalled', reason: 'NoCommand', message: result.message, result },
    };
  };
  if (!opts.install) return refuse('no install command is set; refusing to act on the host');
  if (!doc.spec.source.url) return refuse('source.url is required');
  if (doc.spec.reboot && !opts.reboot) return refuse('reboot requested but no reboot command is set');
  const steps: ApplicationStep[] = [{ id: 'install', type: 'install', description: `install ${doc.spec.source.url}` }];
  // A reboot cut short by its own effect (the agent killed as the device went down) is done, not
  // issued again: the journal's step is only "started", but the boot id says it happened.
  if (doc.spec.reboot && !o.rebooted)
    steps.push({ id: 'reboot', type: 'reboot', argv: opts.reboot!, description: 'reboot after the install' });
  const result = ok(SUCCESS);
  return {
    steps,
    runId: requestId,
    gated: true,
    complete: { requestId, result },
    outcome: { phase: 'Ready', reason: 'Installed', message: SUCCESS, result },
  };
}

export function applicationReconciler(opts: ApplicationOptions): Reconciler<ApplicationPackage, ApplicationObserved, ApplicationStep> {
  return {
    kind: 'ApplicationPackage',
    observe: async (doc, { journal }: { journal: JournalView }) => {
      const completed = doc ? journal.completed(doc.spec.requestId) : undefined;
      if (completed) return { completed };
      const reboot = doc ? journal.step(doc.spec.requestId, 'reboot') : undefined;
      return reboot && reboot.bootId !== journal.bootId ? { rebooted: true } : {};
    },
    plan: (doc, observed) => planApplication(doc, observed, opts),
    async execute(step, doc, { progress }) {
      if (step.type === 'reboot') {
        await runCommand(step.argv);
        return;
      }
      const { source } = doc.spec;
      const credentials = source.credentials ? await opts.credentials(source.credentials.secretRef) : undefined;
      const { path } = await download(source.url!, {
        dir: opts.cacheDir,
        trusted: await opts.trusted(),
        ...(credentials ? { credentials } : {}),
        ...(progress ? { onProgress: progress } : {}),
      });
      try {
        if (!path.endsWith('.deb'))
          throw new InbmError(Status.INSTALL_FAILED, 'AOTA application update FAILED: only .deb packages can be installed');
        if (opts.otaCertFile && (await stat(opts.otaCertFile).catch(() => undefined))) {
          await checkSignature(path, source.signature, await loadVerifyKey(opts.otaCertFile), source.hashAlgorithm);
        }
        await runCommand(
          opts.install!.map((a) => (a === '{file}' ? path : a)),
          300_000,
        ).catch((err: unknown) => {
          throw new InbmError(
            Status.INSTALL_FAILED,
            `AOTA application update FAILED: ${err instanceof InbmError ? err.reason : String(err)}`,
          );
        });
      } finally {
        await rm(path, { force: true });
      }
    },
  };
}
