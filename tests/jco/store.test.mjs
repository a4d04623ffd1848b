// The release component in a host nobody here wrote: jco transpiles it to
// JavaScript, and Node (with @bytecodealliance/preview2-shim for WASI) runs the
// store against dynalite. Run by scripts/test.sh, which transpiles the
// component to $LD_TEST_JCO_MODULE and starts dynalite.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';

const modulePath = process.env.LD_TEST_JCO_MODULE;
const endpoint = process.env.LD_TEST_DYNALITE_ENDPOINT;
assert.ok(modulePath && endpoint, 'run with scripts/test.sh');
const { dataStore } = await import(pathToFileURL(modulePath).href);
const { Store } = dataStore;

const table = `t-jco-${process.pid}`;
const credentials = { accessKeyId: 'AKIDJCO', secretAccessKey: 'jco-secret-key' };
const config = (overrides = {}) => ({
  table, prefix: 'jco', region: 'us-east-1', endpoint, credentials, settings: [], ...overrides,
});
/** Tuning settings by name, as the WIT's `config.settings` takes them. */
const settings = (named) => Object.entries(named).map(([name, value]) => ({ name, value: String(value) }));

/** The store error a call throws (jco throws a ComponentError carrying the `err` payload). */
function storeError(call) {
  try {
    call();
  } catch (e) {
    assert.ok(e.payload, `a store error, not ${e}`);
    return e.payload;
  }
  assert.fail('expected a store error');
}

const item = (key, version, extra = {}) => ({
  version: BigInt(version),
  deleted: false,
  json: JSON.stringify({ key, version, ...extra }),
});

test('open rejects an invalid config without sending anything', () => {
  const e = storeError(() => Store.open(config({ table: 'a b' })));
  assert.equal(e.tag, 'invalid-config');
  assert.match(e.val, /table name/);
});

test('a setting this version does not name is refused by name', () => {
  const unknown = storeError(() => Store.open(config({ settings: settings({ 'init-speed': 3 }) })));
  assert.equal(unknown.tag, 'invalid-config');
  assert.match(unknown.val, /unknown setting "init-speed"/);
  const bad = storeError(() => Store.open(config({ settings: settings({ 'init-concurrency': 'many' }) })));
  assert.equal(bad.tag, 'invalid-config');
  assert.match(bad.val, /init-concurrency must be a whole number/);
  const zero = storeError(() => Store.open(config({ settings: settings({ 'max-attempts': 0 }) })));
  assert.match(zero.val, /max-attempts must be at least 1/);
});

test('the data store works end to end against dynalite', () => {
  const store = Store.open(config());
  assert.equal(store.createTable(), true);
  assert.equal(store.createTable(), false, 'already there');
  assert.equal(store.isInitialized(), false);
  assert.equal(store.isAvailable(), true);

  const report = store.init([
    { kind: 'segments', items: [{ key: 's1', item: item('s1', 1, { included: ['u1'] }) }] },
    {
      kind: 'features',
      items: [
        { key: 'f2', item: item('f2', 2, { prerequisites: [{ key: 'f1', variation: 0 }] }) },
        { key: 'f1', item: item('f1', 1) },
      ],
    },
  ]);
  assert.equal(report.written, 3);
  assert.equal(report.deleted, 0);
  assert.deepEqual(report.dropped, []);
  assert.equal(store.isInitialized(), true);

  const f1 = store.get('features', 'f1');
  assert.equal(f1.version, 1n);
  assert.equal(f1.deleted, false);
  assert.deepEqual(JSON.parse(f1.json), { key: 'f1', version: 1 });
  assert.equal(store.get('features', 'absent'), undefined);
  const all = store.getAll('features').map((k) => k.key).sort();
  assert.deepEqual(all, ['f1', 'f2']);

  assert.equal(store.upsert('features', 'f1', item('f1', 5)), 'applied');
  assert.equal(store.upsert('features', 'f1', item('f1', 3)), 'not-newer');
  assert.equal(store.get('features', 'f1').version, 5n);
  assert.equal(
    store.upsert('features', 'f1', { version: 6n, deleted: true, json: '' }),
    'applied',
  );
  const deleted = store.get('features', 'f1');
  assert.equal(deleted.deleted, true);
  assert.equal(deleted.version, 6n);

  const bad = storeError(() => store.upsert('features', 'f9', item('other', 1)));
  assert.equal(bad.tag, 'invalid-input');
  const colon = storeError(() => store.get('env:features', 'f1'));
  assert.equal(colon.tag, 'invalid-input');
});

test('a missing table is a service error: its code, message, status and request id', () => {
  const store = Store.open(config({ table: `t-jco-missing-${process.pid}` }));
  let thrown;
  try {
    store.get('features', 'f1');
  } catch (e) {
    thrown = e;
  }
  // jco's message does not describe the variant: docs/store.md says to read the payload.
  assert.match(String(thrown?.message), /see error\.payload/);
  const { tag, val } = thrown.payload;
  assert.equal(tag, 'service');
  assert.equal(val.code, 'ResourceNotFoundException');
  assert.equal(val.status, 400);
  assert.equal(typeof val.message, 'string');
  assert.ok('requestId' in val, JSON.stringify(Object.keys(val)));
  assert.equal(val.attempts, 1);
});

test('a closed port is a typed transport error', () => {
  const store = Store.open(config({
    endpoint: 'http://127.0.0.1:9',
    settings: settings({ 'max-attempts': 2, 'base-delay-ms': 1, 'max-delay-ms': 2 }),
  }));
  const e = storeError(() => store.get('features', 'f1'));
  assert.equal(e.tag, 'transport');
  assert.equal(e.val.code, 'connection-refused');
  assert.equal(e.val.attempts, 2);
  assert.equal(store.isAvailable(), false);
  assert.ok(!JSON.stringify(e, (_, v) => (typeof v === 'bigint' ? String(v) : v)).includes('jco-secret-key'));
});
