"""Test helper: runs operations through LaunchDarkly's official Python DynamoDB
stores (feature store with caching disabled, and big segment store).

stdin: {"endpoint", "region", "access_key_id", "secret_access_key", "table",
        "prefix", "ops": [[op, args...], ...]}
stdout: [result, ...]

ops: ["init", {"features": {...}, "segments": {...}}], ["get", kind, key],
     ["all", kind], ["upsert", kind, item], ["delete", kind, key, version],
     ["initialized"], ["big_metadata"], ["big_membership", context_hash],
     ["evaluate", [flag, ...], [{"key", "kind", "attributes"}, ...]]: the Python
     SDK in daemon mode on this store -> {flag: {context key: value}}
"""
import json
import sys

import ldclient
from ldclient import Context
from ldclient.config import Config

from ldclient.feature_store import CacheConfig
from ldclient.integrations import DynamoDB
from ldclient.versioned_data_kind import FEATURES, SEGMENTS

KINDS = {"features": FEATURES, "segments": SEGMENTS}


def encoded(kind, item):
    if item is None or isinstance(item, dict):
        return item
    return kind.encode(item)


def context(spec):
    builder = Context.builder(spec["key"]).kind(spec.get("kind", "user"))
    for name, value in spec.get("attributes", {}).items():
        builder.set(name, value)
    return builder.build()


def evaluate(store, flags, contexts):
    client = ldclient.LDClient(Config(
        "daemon-mode-sdk-key",
        feature_store=store,
        use_ldd=True,
        send_events=False,
        diagnostic_opt_out=True,
    ))
    try:
        return {
            flag: {c["key"]: client.variation(flag, context(c), None) for c in contexts}
            for flag in flags
        }
    finally:
        client.close()


def main():
    spec = json.load(sys.stdin)
    opts = {
        "endpoint_url": spec["endpoint"],
        "region_name": spec["region"],
        "aws_access_key_id": spec["access_key_id"],
        "aws_secret_access_key": spec["secret_access_key"],
    }
    prefix = spec.get("prefix")
    store = DynamoDB.new_feature_store(spec["table"], prefix=prefix, dynamodb_opts=opts, caching=CacheConfig.disabled())
    big = DynamoDB.new_big_segment_store(spec["table"], prefix=prefix, dynamodb_opts=opts)
    results = []
    for op, *args in spec["ops"]:
        if op == "init":
            results.append(store.init({KINDS[k]: v for k, v in args[0].items()}))
        elif op == "get":
            kind = KINDS[args[0]]
            results.append(encoded(kind, store.get(kind, args[1])))
        elif op == "all":
            kind = KINDS[args[0]]
            results.append({k: encoded(kind, v) for k, v in store.all(kind).items()})
        elif op == "upsert":
            results.append(store.upsert(KINDS[args[0]], args[1]))
        elif op == "delete":
            results.append(store.delete(KINDS[args[0]], args[1], args[2]))
        elif op == "evaluate":
            results.append(evaluate(store, args[0], args[1]))
        elif op == "initialized":
            results.append(store.initialized)
        elif op == "big_metadata":
            results.append(big.get_metadata().last_up_to_date)
        elif op == "big_membership":
            results.append(big.get_membership(args[0]))
        else:
            sys.exit("unknown op " + op)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
