import type { Command } from 'commander';

/** INBC-style verbs: each builds an INBM manifest and applies it. */
export function registerVerbs(_program: Command, _root: () => string | undefined, _exit: (code: number) => void): void {}
