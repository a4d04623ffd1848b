// Test oracle: LaunchDarkly's Node server SDK evaluating a data file in
// memory (its file data source). Reads from stdin
//   {"data_file", "contexts": [...], "flags": [...], "default", "options": [...],
//    "sdk_key"?: the key of the secure-mode hashes}
// and prints {"details": [[detail per flag] per context],
//             "states": [[allFlagsState(...).toJSON() per context] per options]}.
// With "events": {"uri", "all_attributes_private", "private_attributes"} and
// "steps": [{"op": "evaluate", "flag", "context", "default"} |
//           {"op": "track", "key", "context", "data"?, "metric_value"?} |
//           {"op": "identify", "context"}]
// it sends analytics events to that URI instead: it runs the steps in order
// (variationDetail for evaluations), flushes, and prints
// {"details": [detail of each evaluation]}.
// The SDK is resolved from $LD_TEST_NODE_MODULES (scripts/setup.sh --node installs it).
const path = require('path');

const modules = process.env.LD_TEST_NODE_MODULES;
const ld = require(path.join(modules, '@launchdarkly', 'node-server-sdk'));

// Runs the steps of the events mode, then flushes: each evaluation's detail.
async function runSteps(client, steps) {
  const details = [];
  for (const step of steps) {
    if (step.op === 'evaluate') {
      details.push(await client.variationDetail(step.flag, step.context, step.default));
    } else if (step.op === 'track') {
      client.track(step.key, step.context, step.data, step.metric_value);
    } else if (step.op === 'identify') {
      client.identify(step.context);
    }
  }
  await client.flush();
  return details;
}

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const spec = JSON.parse(input);
  const source = new ld.integrations.FileDataSourceFactory({ paths: [spec.data_file] });
  const events = spec.events
    ? {
      sendEvents: true,
      eventsUri: spec.events.uri,
      flushInterval: 3600,
      allAttributesPrivate: !!spec.events.all_attributes_private,
      privateAttributes: spec.events.private_attributes || [],
    }
    : { sendEvents: false };
  const client = ld.init(spec.sdk_key || 'sdk-oracle-key', {
    updateProcessor: source.getFactory(),
    diagnosticOptOut: true,
    logger: ld.basicLogger({ level: 'error' }),
    ...events,
  });
  await client.waitForInitialization({ timeout: 20 });
  if (spec.events) {
    process.stdout.write(JSON.stringify({ details: await runSteps(client, spec.steps) }));
    client.close();
    return;
  }
  const details = [];
  for (const context of spec.contexts) {
    const row = [];
    for (const flag of spec.flags) {
      row.push(await client.variationDetail(flag, context, spec.default));
    }
    details.push(row);
  }
  const states = [];
  for (const options of spec.options) {
    const row = [];
    for (const context of spec.contexts) {
      row.push((await client.allFlagsState(context, options)).toJSON());
    }
    states.push(row);
  }
  const hashes = spec.contexts.map((context) => client.secureModeHash(context));
  process.stdout.write(JSON.stringify({ details, states, hashes }));
  client.close();
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
