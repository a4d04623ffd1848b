// The flag evaluator component in a host nobody here wrote: jco transpiles it,
// Node runs it against dynalite, and every flag for every context of
// tests/data/parity.json must equal LaunchDarkly's Node server SDK evaluating
// the same file in the same process. Run by scripts/test.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const storePath = process.env.LD_TEST_JCO_MODULE;
const evaluatorPath = process.env.LD_TEST_JCO_EVALUATOR;
const endpoint = process.env.LD_TEST_DYNALITE_ENDPOINT;
const modules = process.env.LD_TEST_NODE_MODULES;
assert.ok(storePath && evaluatorPath && endpoint && modules, 'run with scripts/test.sh');
const { dataStore } = await import(pathToFileURL(storePath).href);
const { evaluator } = await import(pathToFileURL(evaluatorPath).href);
const ld = createRequire(path.join(modules, 'x.js'))('@launchdarkly/node-server-sdk');

const dataDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'data');
const dataFile = path.join(dataDir, 'parity.json');
const data = JSON.parse(readFileSync(dataFile, 'utf8'));
const contexts = JSON.parse(readFileSync(path.join(dataDir, 'parity-contexts.json'), 'utf8'));

const config = {
  table: `t-jco-eval-${process.pid}`,
  prefix: 'jco-eval',
  region: 'us-east-1',
  endpoint,
  credentials: { accessKeyId: 'AKIDJCO', secretAccessKey: 'jco-secret-key' },
  // The store's tuning settings and the evaluator's own (`cache-ttl-ms`).
  settings: [],
};

const collection = (kind, items) => ({
  kind,
  items: Object.entries(items).map(([key, item]) => ({
    key,
    item: { version: BigInt(item.version), deleted: false, json: JSON.stringify(item) },
  })),
});

test('every flag for every context equals the Node server SDK', async () => {
  const store = dataStore.Store.open(config);
  store.createTable();
  store.init([collection('segments', data.segments), collection('features', data.flags)]);

  const source = new ld.integrations.FileDataSourceFactory({ paths: [dataFile] });
  const client = ld.init('sdk-jco-key', {
    updateProcessor: source.getFactory(),
    sendEvents: false,
    diagnosticOptOut: true,
    logger: ld.basicLogger({ level: 'none' }),
  });
  await client.waitForInitialization({ timeout: 20 });

  const flagEvaluator = evaluator.Evaluator.open(config);
  const flags = [...Object.keys(data.flags), 'no-such-flag'];
  let compared = 0;
  for (const context of contexts) {
    const contextJson = JSON.stringify(context);
    for (const flag of flags) {
      const ours = flagEvaluator.evaluate(flag, contextJson, '"fallback"');
      const theirs = await client.variationDetail(flag, context, 'fallback');
      const what = `${flag} for ${contextJson}`;
      assert.deepEqual(JSON.parse(ours.valueJson), theirs.value, `value of ${what}`);
      assert.equal(ours.variationIndex ?? null, theirs.variationIndex ?? null, `variation of ${what}`);
      assert.deepEqual(JSON.parse(ours.reasonJson), theirs.reason, `reason of ${what}`);
      compared += 1;
    }
    for (const [filter, options] of [
      ['all', { withReasons: true }],
      ['client-side', { clientSideOnly: true }],
    ]) {
      const ours = JSON.parse(flagEvaluator.allFlagsState(contextJson, {
        filter, withReasons: !!options.withReasons, detailsOnlyForTrackedFlags: false,
      }));
      const theirs = (await client.allFlagsState(context, options)).toJSON();
      assert.deepEqual(ours, theirs, `allFlagsState ${filter} for ${contextJson}`);
    }
    assert.equal(flagEvaluator.secureModeHash(contextJson, 'sdk-jco-key'), client.secureModeHash(context));
  }
  assert.ok(compared > 1000, `${compared} evaluations`);
  client.close();
});

test('a malformed context is a typed error, not a trap', () => {
  const flagEvaluator = evaluator.Evaluator.open(config);
  try {
    flagEvaluator.evaluate('op-in', '{"kind":"user"}', 'null');
    assert.fail('expected an error');
  } catch (e) {
    assert.equal(e.payload?.tag, 'invalid-context', `${e}`);
    assert.equal(typeof e.payload.val, 'string');
  }
});

test('an eval-error holds a message, or the store-error variant under tag store', () => {
  const payload = (call) => {
    try {
      call();
    } catch (e) {
      return e.payload;
    }
    assert.fail('expected an error');
  };
  const flagEvaluator = evaluator.Evaluator.open(config);
  const invalid = payload(() => flagEvaluator.evaluate('op-in', '{"key":"u"}', 'not json'));
  assert.equal(invalid.tag, 'invalid-default');
  assert.equal(typeof invalid.val, 'string');
  const closed = evaluator.Evaluator.open({
    ...config,
    endpoint: 'http://127.0.0.1:9',
    settings: [
      { name: 'max-attempts', value: '1' },
      { name: 'base-delay-ms', value: '1' },
      { name: 'max-delay-ms', value: '1' },
    ],
  });
  const store = payload(() => closed.evaluate('op-in', '{"key":"u"}', 'null'));
  assert.equal(store.tag, 'store');
  assert.equal(store.val.tag, 'transport');
  assert.equal(store.val.val.code, 'connection-refused');
});
