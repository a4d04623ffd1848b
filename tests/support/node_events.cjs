// LaunchDarkly's Node server SDK producing analytics events, for the events
// parity test: its events go to a local receiver. Reads from stdin
//   {"data_file", "events_uri", "sdk_key", "all_attributes_private",
//    "private_attributes": [...],
//    "steps": [{"op": "evaluate", "flag", "context", "default"} |
//              {"op": "track", "key", "context", "data"?, "metric_value"?} |
//              {"op": "identify", "context"}]}
// runs the steps in order (variationDetail for evaluations), flushes, and
// prints {"details": [detail of each evaluation]}.
// The SDK is resolved from $LD_TEST_NODE_MODULES (scripts/setup.sh --node installs it).
const path = require('path');

const modules = process.env.LD_TEST_NODE_MODULES;
const ld = require(path.join(modules, '@launchdarkly', 'node-server-sdk'));

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const spec = JSON.parse(input);
  const source = new ld.integrations.FileDataSourceFactory({ paths: [spec.data_file] });
  const client = ld.init(spec.sdk_key, {
    updateProcessor: source.getFactory(),
    sendEvents: true,
    eventsUri: spec.events_uri,
    diagnosticOptOut: true,
    flushInterval: 3600,
    allAttributesPrivate: !!spec.all_attributes_private,
    privateAttributes: spec.private_attributes || [],
    logger: ld.basicLogger({ level: 'error' }),
  });
  await client.waitForInitialization({ timeout: 20 });
  const details = [];
  for (const step of spec.steps) {
    if (step.op === 'evaluate') {
      details.push(await client.variationDetail(step.flag, step.context, step.default));
    } else if (step.op === 'track') {
      client.track(step.key, step.context, step.data, step.metric_value);
    } else if (step.op === 'identify') {
      client.identify(step.context);
    }
  }
  await client.flush();
  process.stdout.write(JSON.stringify({ details }));
  client.close();
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
