import { execFile } from 'node:child_process';
import { InbmError, Status } from '../core/result.js';

/** Runs an argument array (never a shell); a non-zero exit is a 400 naming the command. */
export function runCommand(argv: readonly string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new InbmError(Status.INSTALL_FAILED, 'empty command'));
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException & { code?: unknown }).code;
        reject(
          new InbmError(
            Status.INSTALL_FAILED,
            `${file} failed: ${typeof code === 'number' ? `exit ${code}` : String(code ?? err.message)}`,
          ),
        );
      } else resolve({ stdout, stderr });
    });
  });
}
