/**
 * mqtt.js's connect function from its connect module alone: the package root also loads the
 * browser, websocket and proxy transports (about 5 MiB of RSS the agent never uses).
 */
import type { IClientOptions, MqttClient } from 'mqtt';

type Connect = (url: string, opts?: IClientOptions) => MqttClient;

export async function loadConnect(): Promise<Connect> {
  const mod = (await import('mqtt/lib/connect/index')) as unknown as { default: Connect | { default: Connect } };
  // Node hands a CommonJS module's exports over as `default`; loaders with interop unwrap it once more.
  return typeof mod.default === 'function' ? mod.default : mod.default.default;
}
