// Stands in, in the bundle only, for dockerode's dependencies the agent never reaches: ssh2
// (ssh:// DOCKER_HOST), gRPC and protobufjs (BuildKit sessions for image builds). Loading them
// cost ~18 MiB of RSS the moment the agent first talked to the engine (bench agent-footprint).
// Using one throws at the call, naming what is unsupported.
const unsupported = (what) => {
  throw new Error(`inbm: ${what} is not supported by this build (docker over ssh, BuildKit builds)`);
};
module.exports = {
  Client: class {
    constructor() {
      unsupported('ssh2');
    }
  },
  loadSync: () => unsupported('@grpc/proto-loader'),
  loadPackageDefinition: () => unsupported('@grpc/grpc-js'),
  Server: class {
    constructor() {
      unsupported('@grpc/grpc-js');
    }
  },
  ServerCredentials: { createInsecure: () => unsupported('@grpc/grpc-js') },
};
