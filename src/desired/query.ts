/** Requests answered from observed state: they never become desired-state documents. */
import { z } from 'zod';

export const Query = z.discriminatedUnion('target', [
  z
    .object({
      target: z.literal('device'),
      option: z.enum(['all', 'hw', 'fw', 'os', 'status', 'version', 'security', 'guid', 'swbom']),
    })
    .strict(),
  z.object({ target: z.literal('config'), keys: z.array(z.string()).min(1) }).strict(),
  z
    .object({
      target: z.literal('containers'),
      what: z.enum(['stats', 'list']),
      app: z.enum(['docker', 'compose']),
      name: z.string().optional(),
    })
    .strict(),
  z.object({ target: z.literal('sources'), source: z.enum(['os', 'application']) }).strict(),
]);
export type Query = z.infer<typeof Query>;
