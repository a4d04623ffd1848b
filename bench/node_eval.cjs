// Benchmark side of LaunchDarkly's Node server SDK evaluating a data file in
// memory: stdin {"data_file", "context", "flag", "evaluations", "states"};
// stdout {"evaluations_per_s", "states_per_s"} per second of wall-clock time
// and {"evaluations_per_cpu_s", "states_per_cpu_s"} per second of the
// process's CPU time (user and system, all its threads: `process.cpuUsage()`).
// The SDK is resolved from $LD_TEST_NODE_MODULES.
const path = require('path');

const ld = require(path.join(process.env.LD_TEST_NODE_MODULES, '@launchdarkly', 'node-server-sdk'));

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const spec = JSON.parse(input);
  const source = new ld.integrations.FileDataSourceFactory({ paths: [spec.data_file] });
  const client = ld.init('sdk-bench-key', {
    updateProcessor: source.getFactory(),
    sendEvents: false,
    diagnosticOptOut: true,
    logger: ld.basicLogger({ level: 'none' }),
  });
  await client.waitForInitialization({ timeout: 20 });
  // CPU seconds since `since` (a process.cpuUsage() reading).
  const cpuSeconds = (since) => {
    const used = process.cpuUsage(since);
    return (used.user + used.system) / 1e6;
  };
  let started = process.hrtime.bigint();
  let cpu = process.cpuUsage();
  for (let i = 0; i < spec.evaluations; i += 1) {
    await client.variationDetail(spec.flag, spec.context, false);
  }
  const evalSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const evalCpu = cpuSeconds(cpu);
  started = process.hrtime.bigint();
  cpu = process.cpuUsage();
  for (let i = 0; i < spec.states; i += 1) {
    await client.allFlagsState(spec.context, { withReasons: true });
  }
  const stateSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const stateCpu = cpuSeconds(cpu);
  process.stdout.write(JSON.stringify({
    evaluations_per_s: spec.evaluations / evalSeconds,
    states_per_s: spec.states / stateSeconds,
    evaluations_per_cpu_s: spec.evaluations / evalCpu,
    states_per_cpu_s: spec.states / stateCpu,
  }));
  client.close();
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
