import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { DOCKER_DIR, requirePromtool, runPromtool } from './promtool';

interface AlertRule {
  alert?: string;
  expr: string;
  annotations?: Record<string, string>;
}
interface AlertTest {
  alert_rule_test?: { alertname: string; exp_alerts?: unknown[] | null }[];
}

const ALERTS = path.join(DOCKER_DIR, 'prometheus/alerts.yml');
const ALERT_TESTS = path.join(DOCKER_DIR, 'prometheus/alerts.test.yml');

function alertRules(): AlertRule[] {
  const doc = parse(fs.readFileSync(ALERTS, 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);
}

describe('Prometheus alert rules (promtool)', function () {
  this.timeout(30_000);

  it('promtool check rules accepts docker/prometheus/alerts.yml', async function () {
    requirePromtool(this);
    const { code, output } = await runPromtool(['check', 'rules', 'prometheus/alerts.yml']);
    expect(code, output).to.equal(0);
  });

  it('promtool test rules passes docker/prometheus/alerts.test.yml', async function () {
    requirePromtool(this);
    const { code, output } = await runPromtool(['test', 'rules', 'alerts.test.yml'], { cwd: path.join(DOCKER_DIR, 'prometheus') });
    expect(code, output).to.equal(0);
    expect(output).to.include('SUCCESS');
  });

  it('promtool check config accepts docker/prometheus/prometheus.yml (which loads the rules)', async function () {
    requirePromtool(this);
    const { code, output } = await runPromtool(['check', 'config', 'prometheus/prometheus.yml']);
    expect(code, output).to.equal(0);
    expect(output).to.match(/1 rule files found/);
  });

  it('covers the alerts the issue asks for, each with a runbook and a summary', () => {
    const rules = alertRules();
    const byName = new Map(rules.map((r) => [r.alert!, r]));
    const wanted: Record<string, RegExp> = {
      OrderflowIngestStalled: /orderflow_ingest_buffered_events[\s\S]*orderflow_ingest_events_total\{outcome="stored"\}/,
      OrderflowAckLatencyHigh: /histogram_quantile\(0\.99,[\s\S]*orderflow_ingest_ack_latency_seconds_bucket/,
      OrderflowPoolSaturated: /orderflow_db_pool_pending_acquires/,
      OrderflowSlowQueriesRising: /orderflow_db_slow_queries_total/,
      OrderflowGrpcErrorRateHigh: /orderflow_grpc_server_handled_total\{code=~/,
      OrderflowCacheHitRatioLow: /orderflow_cache_hits_total[\s\S]*orderflow_cache_misses_total/,
      OrderflowDatabaseDown: /orderflow_database_up == 0/,
    };
    for (const [name, expr] of Object.entries(wanted)) {
      const rule = byName.get(name);
      expect(rule, name).to.not.equal(undefined);
      expect(rule!.expr, name).to.match(expr);
    }
    for (const rule of rules) {
      expect(rule.annotations?.runbook, `${rule.alert} runbook`).to.be.a('string').with.length.greaterThan(20);
      expect(rule.annotations?.summary, `${rule.alert} summary`).to.be.a('string').and.not.equal('');
    }
  });

  it('alerts.test.yml has a firing and a silent case for every alert', () => {
    const doc = parse(fs.readFileSync(ALERT_TESTS, 'utf8')) as { tests: AlertTest[] };
    const cases = doc.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const rule of alertRules()) {
      const mine = cases.filter((c) => c.alertname === rule.alert);
      expect(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${rule.alert} fires somewhere`).to.equal(true);
      expect(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${rule.alert} stays silent somewhere`).to.equal(true);
    }
  });
});
