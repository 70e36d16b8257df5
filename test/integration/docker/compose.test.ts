import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { parseHostPort } from '../../../src/config';

// No Docker engine runs where the tests run: these checks read the files
// (compose, Prometheus, Grafana, Dockerfile) and hold them against the README.
const ROOT = path.resolve(__dirname, '../../../..');
const DOCKER = path.join(ROOT, 'docker');

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
}

const compose = parse(fs.readFileSync(path.join(DOCKER, 'compose.yaml'), 'utf8')) as { services: Record<string, ComposeService> };
const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** Host ports a service publishes ("50051:50051" → 50051). */
function publishedPorts(service: ComposeService): number[] {
  return (service.ports ?? []).map((p) => Number(String(p).split(':').slice(-2)[0]));
}

/** The README's compose table: service → { image, ports }. */
function readmeServices(): Map<string, { image: string; ports: number[] }> {
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => /^\| service \| image \| ports \|/.test(l));
  expect(start, 'README has the compose services table').to.be.greaterThan(-1);
  const rows = new Map<string, { image: string; ports: number[] }>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const [service, image, ports] = line.split('|').slice(1, 4).map((c) => c.trim());
    rows.set(service!.replace(/`/g, ''), { image: image!, ports: [...ports!.matchAll(/`(\d+)`/g)].map((m) => Number(m[1])) });
  }
  return rows;
}

describe('docker/compose.yaml, Prometheus, Grafana and the Dockerfile agree with the README', () => {
  it('defines the services orderflow, postgres, jaeger, prometheus and grafana', () => {
    expect(Object.keys(compose.services).sort()).to.deep.equal(['grafana', 'jaeger', 'orderflow', 'postgres', 'prometheus']);
  });

  it("publishes exactly the ports the README's table lists, and the images it names", () => {
    const documented = readmeServices();
    expect([...documented.keys()].sort()).to.deep.equal(Object.keys(compose.services).sort());
    for (const [name, service] of Object.entries(compose.services)) {
      expect(publishedPorts(service).sort(), `${name} ports`).to.deep.equal(documented.get(name)!.ports.sort());
      if (service.image && !service.build) expect(documented.get(name)!.image, `${name} image`).to.equal(`\`${service.image}\``);
    }
    // The well-known ports the issue names.
    const all = Object.values(compose.services).flatMap(publishedPorts);
    expect(all).to.include.members([50051, 9464, 16686, 4317, 4318, 9090, 3000]);
    expect(readme).to.include('docker compose -f docker/compose.yaml up');
  });

  it('wires orderflow to postgres and to Jaeger over OTLP/HTTP, listening on published ports', () => {
    const svc = compose.services.orderflow!;
    const env = svc.environment!;
    const db = new URL(env.DATABASE_URL!);
    expect(db.hostname).to.equal('postgres');
    expect(db.port).to.equal('5432');
    const pg = compose.services.postgres!.environment!;
    expect(decodeURIComponent(db.username)).to.equal(pg.POSTGRES_USER);
    expect(decodeURIComponent(db.password)).to.equal(pg.POSTGRES_PASSWORD);
    expect(db.pathname).to.equal(`/${pg.POSTGRES_DB}`);

    const otlp = new URL(env.OTEL_EXPORTER_OTLP_ENDPOINT!);
    expect(otlp.hostname).to.equal('jaeger');
    expect(otlp.port).to.equal('4318');
    expect(env.OTEL_EXPORTER_OTLP_PROTOCOL).to.equal('http/protobuf');
    expect(publishedPorts(compose.services.jaeger!)).to.include.members([4317, 4318, 16686]);

    const grpcAddress = parseHostPort(env.GRPC_ADDRESS!)!;
    const metricsAddress = parseHostPort(env.METRICS_ADDRESS!)!;
    expect(grpcAddress.host).to.equal('0.0.0.0');
    expect(metricsAddress.host).to.equal('0.0.0.0');
    expect(publishedPorts(svc)).to.include.members([grpcAddress.port, metricsAddress.port]);
    expect(svc.depends_on).to.deep.include({ postgres: { condition: 'service_healthy' } });
    expect(compose.services.postgres!.healthcheck?.test.join(' ')).to.include('pg_isready');
  });

  it('documents every variable the compose file sets on orderflow', () => {
    for (const key of Object.keys(compose.services.orderflow!.environment!)) {
      expect(readme, key).to.match(new RegExp(`\\| \`${key}\` \\|`));
    }
  });

  it("Prometheus scrapes orderflow's metrics port as job orderflow and loads the alert rules", () => {
    const prom = parse(fs.readFileSync(path.join(DOCKER, 'prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
    };
    const job = prom.scrape_configs.find((c) => c.job_name === 'orderflow');
    expect(job, 'job orderflow').to.not.equal(undefined);
    expect(job!.metrics_path ?? '/metrics').to.equal('/metrics');
    const metricsPort = parseHostPort(compose.services.orderflow!.environment!.METRICS_ADDRESS!)!.port;
    expect(job!.static_configs.flatMap((s) => s.targets)).to.deep.equal([`orderflow:${metricsPort}`]);
    // The rule file is mounted next to the config, where rule_files points.
    const volumes = compose.services.prometheus!.volumes!;
    for (const rule of prom.rule_files) expect(volumes).to.include(`./prometheus/${rule}:/etc/prometheus/${rule}:ro`);
    expect(volumes).to.include('./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });

  it('every file or directory compose mounts exists in the repository', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (!source.startsWith('.')) continue;
        expect(fs.existsSync(path.join(DOCKER, source)), `${name}: ${source}`).to.equal(true);
      }
    }
    const build = compose.services.orderflow!.build!;
    expect(fs.existsSync(path.join(DOCKER, build.context, build.dockerfile))).to.equal(true);
  });

  it('Grafana is provisioned with the Prometheus datasource and the dashboard, whose queries all use it', () => {
    const datasource = parse(fs.readFileSync(path.join(DOCKER, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: { uid: string; type: string; url: string }[] };
    const [ds] = datasource.datasources;
    expect(ds).to.include({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' });
    const provider = parse(fs.readFileSync(path.join(DOCKER, 'grafana/provisioning/dashboards/orderflow.yml'), 'utf8')) as { providers: { options: { path: string } }[] };
    const dashboardsPath = provider.providers[0]!.options.path;
    expect(compose.services.grafana!.volumes).to.include(`./grafana/dashboards:${dashboardsPath}:ro`);

    const dashboard = JSON.parse(fs.readFileSync(path.join(DOCKER, 'grafana/dashboards/orderflow.json'), 'utf8')) as { uid: string; panels: { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string }[] }[] };
    expect(dashboard.uid).to.equal('orderflow');
    const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).to.equal('prometheus');
      expect(panel.targets ?? [], panel.title).to.not.deep.equal([]);
    }
    // The main figures the issue lists.
    for (const family of [
      'orderflow_ingest_events_total',
      'orderflow_ingest_ack_latency_seconds_bucket',
      'orderflow_ingest_flush_duration_seconds_bucket',
      'orderflow_ingest_buffered_events',
      'orderflow_db_pool_connections',
      'orderflow_db_pool_pending_acquires',
      'orderflow_db_query_duration_seconds_bucket',
      'orderflow_cache_hits_total',
      'orderflow_grpc_server_handled_total',
    ]) {
      expect(exprs.some((e) => e.includes(family)), family).to.equal(true);
    }
  });

  it('the Dockerfile builds in stages and runs production dependencies as a non-root user with node directly', () => {
    const dockerfile = fs.readFileSync(path.join(DOCKER, 'Dockerfile'), 'utf8');
    expect(dockerfile.match(/^FROM /gm)?.length).to.be.greaterThan(1);
    expect(dockerfile).to.match(/npm ci --omit=dev/);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).to.match(/^USER (?!root)\S+/m);
    expect(runtime).to.include('CMD ["node", "dist/src/main.js"]');
    expect(runtime).to.match(/GRPC_ADDRESS=0\.0\.0\.0:50051/);
    expect(runtime).to.match(/METRICS_ADDRESS=0\.0\.0\.0:9464/);
    expect(runtime).to.match(/^HEALTHCHECK /m);
    expect(runtime).to.not.match(/npm (start|run)/);
  });
});
