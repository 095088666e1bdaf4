/**
 * The boundary between the agent and any MQTT connection (local broker, ThingsBoard, a templated
 * cloud, later Azure): adapters and telemetry publish and subscribe through a Link and never see
 * mqtt.js, TLS or the outbox behind it.
 */
import type { Result } from '../core/result.js';

export interface PublishOptions {
  qos?: 0 | 1;
  retain?: boolean;
}

export interface Link {
  /** Resolves once the message is handed to the broker, or queued in the persistent outbox while offline. */
  publish(topic: string, payload: string | Buffer, opts?: PublishOptions): Promise<void>;
  subscribe(filter: string, onMessage: (topic: string, payload: Buffer) => void): Promise<void>;
  readonly connected: boolean;
}

/** What a cloud adapter may ask of the agent: every request becomes a manifest drop. */
export interface AgentPort {
  /** Submits an INBM XML manifest exactly as if dropped into the desired-state folder; resolves with its final result. */
  submitManifest(xml: string, origin: string): Promise<Result>;
}
