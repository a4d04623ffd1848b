// Test oracle: LaunchDarkly's Node server SDK evaluating a data file in
// memory (its file data source). Reads from stdin
//   {"data_file", "contexts": [...], "flags": [...], "default", "options": [...],
//    "sdk_key"?: the key of the secure-mode hashes}
// and prints {"details": [[detail per flag] per context],
//             "states": [[allFlagsState(...).toJSON() per context] per options]}.
// The SDK is resolved from $LD_TEST_NODE_MODULES (scripts/setup.sh --node installs it).
const path = require('path');

const modules = process.env.LD_TEST_NODE_MODULES;
const ld = require(path.join(modules, '@launchdarkly', 'node-server-sdk'));

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const spec = JSON.parse(input);
  const source = new ld.integrations.FileDataSourceFactory({ paths: [spec.data_file] });
  const client = ld.init(spec.sdk_key || 'sdk-oracle-key', {
    updateProcessor: source.getFactory(),
    sendEvents: false,
    diagnosticOptOut: true,
    logger: ld.basicLogger({ level: 'error' }),
  });
  await client.waitForInitialization({ timeout: 20 });
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
