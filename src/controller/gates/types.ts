/** The health-gate contract: one measured value against one threshold, so `inbm plan` can print both. */
export interface GateResult {
  gate: string;
  ok: boolean;
  measured: string | number | null;
  threshold: string | number | null;
  unit?: string;
  message: string;
  /** The check passed without measuring (turned off or nothing to run). */
  skipped?: boolean;
  /** Measuring itself failed; the caller answers 301 rather than "gate failed". */
  error?: boolean;
}

export interface GateContext {
  signal?: AbortSignal;
}

export interface Gate {
  readonly name: string;
  check(ctx: GateContext): Promise<GateResult>;
}

export const MIB = 1024 * 1024;

export function errorResult(gate: string, err: unknown): GateResult {
  const why = err instanceof Error ? err.message : String(err);
  return { gate, ok: false, measured: null, threshold: null, message: `could not be evaluated: ${why}`, error: true };
}

export function skippedResult(gate: string, message: string): GateResult {
  return { gate, ok: true, measured: null, threshold: null, message, skipped: true };
}

/** "52 MiB free < 100 MiB required" style comparison shared by the numeric gates. */
export function atLeast(gate: string, measured: number, threshold: number, unit: string, what: string): GateResult {
  const ok = measured >= threshold;
  const op = ok ? '>=' : '<';
  return { gate, ok, measured, threshold, unit, message: `${measured} ${unit} ${what} ${op} ${threshold} ${unit} required` };
}
