import { type Logger, pino } from 'pino';

export type { Logger };

/** Field names whose values never reach a log line, at any depth we use. */
export const REDACT = [
  'password',
  'dockerPassword',
  'token',
  'secret',
  '*.password',
  '*.dockerPassword',
  '*.token',
  '*.secret',
  '*.*.password',
  '*.*.token',
  'data.password',
  'credentials.password',
  'headers.authorization',
  '*.headers.authorization',
];

/** One root logger per process (built in the composition root); components take children of it. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { pid: process.pid }, redact: { paths: REDACT, censor: '[redacted]' } },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}
