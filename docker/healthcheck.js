'use strict';
// Container HEALTHCHECK: asks grpc.health.v1 on the port of GRPC_ADDRESS and
// exits 0 only when the service answers SERVING (the database is reachable).
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { protoPath } = require('grpc-health-check');

const port = (process.env.GRPC_ADDRESS || '127.0.0.1:50051').split(':').pop();
const definition = protoLoader.loadSync(protoPath, { keepCase: true, enums: String, defaults: true });
const { Health } = grpc.loadPackageDefinition(definition).grpc.health.v1;
const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
client.Check({ service: '' }, { deadline: Date.now() + 3_000 }, (err, res) => {
  client.close();
  process.exit(!err && res.status === 'SERVING' ? 0 : 1);
});
