import { z } from 'zod';
import { Artifact, documentOf, Name, SecretRef } from './common.js';

const SoakSeconds = z
  .number()
  .int()
  .min(0)
  .max(3600)
  .default(10)
  .describe(
    'How long a new version must stay running before it is committed; a container with a health check must also be healthy by then: unhealthy fails at once, still starting gets the soak time again (at least 30 s) before the rollout fails',
  );

const RegistryLogin = z
  .object({ server: z.string().min(1).max(200), credentials: SecretRef })
  .strict()
  .describe('Registry to log in to before pulling');

export const ContainerImage = documentOf(
  'ContainerImage',
  z
    .object({
      image: z.string().min(1).max(200).describe('Image repository, e.g. "sample-container" or "registry:5000/app"'),
      tag: z.string().max(128).optional().describe('Image tag; with ensure=absent and no tag, every tag is removed'),
      ensure: z.enum(['present', 'absent']).default('present'),
      source: z
        .object({
          method: z
            .enum(['import', 'load', 'pull'])
            .describe('docker import of a rootfs tarball, docker load of an image tarball, or registry pull'),
          artifact: Artifact.optional().describe('For import and load'),
          registry: RegistryLogin.optional(),
        })
        .strict()
        .optional(),
      container: z
        .object({
          run: z.boolean().default(true),
          restartPolicy: z.enum(['no', 'always', 'unless-stopped', 'on-failure']).default('unless-stopped'),
          command: z.string().max(200).optional().describe('Command run in the container (AOTA configParams execcmd)'),
          devices: z.array(z.string().max(200)).optional(),
          ports: z.array(z.string().max(50)).optional(),
        })
        .strict()
        .optional(),
      soakSeconds: SoakSeconds,
    })
    .strict(),
  'A Docker image (and optionally one container from it) on the device (AOTA docker import/load/pull/remove)',
);

export const ComposeStack = documentOf(
  'ComposeStack',
  z
    .object({
      project: Name.describe('Compose project name (AOTA containerTag)'),
      ensure: z.enum(['running', 'stopped', 'absent']).default('running').describe('stopped = down, absent = down and images removed'),
      source: Artifact.optional().describe('Tarball holding the compose file and what it needs'),
      file: z.string().max(50).optional().describe('Compose file inside the tarball (default docker-compose.yml)'),
      pullPolicy: z.enum(['missing', 'always']).default('missing'),
      registry: RegistryLogin.optional(),
      soakSeconds: SoakSeconds,
    })
    .strict(),
  'A docker-compose stack (AOTA compose up/down/pull/remove)',
);
