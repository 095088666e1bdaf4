import { startAgent } from '../agent.js';

/** Runs until SIGTERM/SIGINT, then lets the pass in flight finish (its steps are journalled) and exits 0. */
export async function runAgent(root: string | undefined, logLevel: string | undefined): Promise<number> {
  const agent = await startAgent({ ...(root ? { root } : {}), ...(logLevel ? { logLevel } : {}) });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await agent.stop();
  return 0;
}
