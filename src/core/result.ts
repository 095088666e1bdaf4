/**
 * Result codes and the one error type every layer throws.
 *
 * Codes follow the seed guide's table (spec §2), which is wider than the set the reference
 * code actually sends; clouds classify by `status`, so the numbers are the contract.
 */
export const Status = {
  OK: 200,
  BAD_MANIFEST: 300,
  COMMAND_FAILURE: 301,
  IN_PROGRESS: 303,
  INSTALL_FAILED: 400,
  IMAGE_PRESENT: 401,
  NOT_FOUND: 404,
} as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/** What the controller should do next with an error (Flux's stalled / waiting split). */
export type Next = 'stall' | 'retry';

const PREFIX: Partial<Record<StatusCode, string>> = {
  300: 'FAILED TO PARSE/VALIDATE MANIFEST',
  301: 'COMMAND FAILURE',
  303: 'OTA IN PROGRESS, TRY LATER',
  400: 'FAILED TO INSTALL',
};

export class InbmError extends Error {
  override readonly name = 'InbmError';
  constructor(
    readonly status: StatusCode,
    /** Names the element or field and the rule it broke; never echoes secrets. */
    readonly reason: string,
    /** Whether trying the same request again later can succeed (network, busy engine). */
    readonly retryable = false,
    options?: { cause?: unknown },
  ) {
    super(formatMessage(status, reason), options);
  }

  get next(): Next {
    return this.retryable ? 'retry' : 'stall';
  }

  toResult(jobId = ''): Result {
    return { status: this.status, message: this.message, job_id: jobId };
  }
}

function formatMessage(status: StatusCode, reason: string): string {
  const prefix = PREFIX[status];
  return prefix ? `${prefix}: ${reason}` : reason;
}

/** The wire result, key order as the reference sends it. */
export interface Result {
  status: number;
  message: string;
  job_id: string;
}

export function ok(message: string, jobId = ''): Result {
  return { status: Status.OK, message, job_id: jobId };
}

export const badManifest = (reason: string): InbmError => new InbmError(Status.BAD_MANIFEST, reason);
export const installFailed = (reason: string, retryable = false): InbmError => new InbmError(Status.INSTALL_FAILED, reason, retryable);

/** Any thrown value as a result; unknown errors are 400 without leaking internals. */
export function resultOf(err: unknown, jobId = ''): Result {
  if (err instanceof InbmError) return err.toResult(jobId);
  return installFailed('internal error').toResult(jobId);
}
