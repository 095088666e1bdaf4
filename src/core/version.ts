/** The agent's version, reported by `inbm --version`, the inventory and telemetry. */
export const VERSION = '0.1.0';
