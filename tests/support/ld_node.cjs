// Test helper: runs operations through LaunchDarkly's official Node.js
// DynamoDB store (`launchdarkly-node-server-sdk-dynamodb` 4.0.0, for their
// Node server SDK 6.x, on the v2 AWS SDK; caching disabled), installed by
// `scripts/setup.sh --node` in `LD_TEST_NODE_MODULES`.
//
// stdin: {"endpoint", "region", "access_key_id", "secret_access_key", "table",
//         "prefix", "ops": [[op, args...], ...]}
// stdout: [result, ...]
//
// ops, as the SDK calls its feature store: ["init", {"features": {...},
// "segments": {...}}], ["get", kind, key] (null when missing or deleted),
// ["all", kind] (deleted items left out), ["upsert", kind, item],
// ["delete", kind, key, version], ["initialized"]; and ["raw", kind, key]:
// the item as the store read it from the table, tombstones included.
// A failure the store logs at error level fails the helper.
'use strict';

const path = require('path');

const modules = process.env.LD_TEST_NODE_MODULES;
if (!modules) {
  throw new Error('LD_TEST_NODE_MODULES is not set: run the tests with scripts/test.sh');
}
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const AWS = require(path.join(modules, 'aws-sdk'));
const { DynamoDBFeatureStore } = require(path.join(modules, 'launchdarkly-node-server-sdk-dynamodb'));
const dataKind = require(path.join(modules, 'launchdarkly-node-server-sdk/versioned_data_kind'));

const KINDS = { features: dataKind.features, segments: dataKind.segments };

const errors = [];
const logger = {
  debug() {},
  info() {},
  warn(...args) { process.stderr.write(`warn: ${args.join(' ')}\n`); },
  error(...args) { errors.push(args.join(' ')); },
};

function call(fn) {
  return new Promise(resolve => fn(resolve));
}

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const spec = JSON.parse(input);
  const store = DynamoDBFeatureStore(spec.table, {
    prefix: spec.prefix || undefined,
    cacheTTL: 0,
    clientOptions: {
      endpoint: spec.endpoint,
      region: spec.region,
      credentials: new AWS.Credentials(spec.access_key_id, spec.secret_access_key),
    },
  })({ logger });
  const results = [];
  for (const [op, ...args] of spec.ops) {
    const kind = KINDS[args[0]];
    switch (op) {
      case 'init': {
        const data = {};
        for (const [name, items] of Object.entries(args[0])) data[KINDS[name].namespace] = items;
        results.push(await call(cb => store.init(data, () => cb(null))));
        break;
      }
      case 'get':
        results.push(await call(cb => store.get(kind, args[1], item => cb(item || null))));
        break;
      case 'all':
        results.push(await call(cb => store.all(kind, items => cb(items || null))));
        break;
      case 'upsert':
        results.push(await call(cb => store.upsert(kind, args[1], () => cb(null))));
        break;
      case 'delete':
        results.push(await call(cb => store.delete(kind, args[1], args[2], () => cb(null))));
        break;
      case 'initialized':
        results.push(await call(cb => store.initialized(cb)));
        break;
      case 'raw':
        results.push(await call(cb => store.underlyingStore.getInternal(kind, args[1], cb)));
        break;
      default:
        throw new Error(`unknown op ${op}`);
    }
    if (errors.length) throw new Error(`the store logged: ${errors.join('; ')}`);
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch(e => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
