import type { z } from 'zod';
import { ComposeStack, ContainerImage } from './containers.js';
import { Configuration, PowerAction } from './device.js';
import { ApplicationPackage, PackageSource } from './packages.js';
import { Firmware, OSUpdate, PlatformUpdate } from './platform.js';

export { API_VERSION, GROUP, VERSION } from './common.js';

/** Every kind, by name. Adding a kind here is what makes gen, validate and the store know it. */
export const KINDS = {
  ContainerImage,
  ComposeStack,
  ApplicationPackage,
  Firmware,
  OSUpdate,
  PlatformUpdate,
  Configuration,
  PackageSource,
  PowerAction,
} as const;

export type KindName = keyof typeof KINDS;
export type DocumentOf<K extends KindName> = z.infer<(typeof KINDS)[K]>;
/** A desired-state document as authored (defaults not yet applied). */
export type DocumentInput = { [K in KindName]: z.input<(typeof KINDS)[K]> }[KindName];
/** A desired-state document after validation (defaults applied). */
export type Document = { [K in KindName]: DocumentOf<K> }[KindName];

export const isKind = (kind: unknown): kind is KindName => typeof kind === 'string' && Object.hasOwn(KINDS, kind);
