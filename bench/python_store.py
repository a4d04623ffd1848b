"""Benchmark side of LaunchDarkly's official Python DynamoDB store
(launchdarkly-server-sdk, caching disabled).

stdin: {"endpoint", "region", "access_key_id", "secret_access_key", "op",
        "runs", "data_file" (init), "table" (get_all/gets), "keys" (gets),
        "level" (get_all/gets: "json", each item's JSON parsed into dicts by
        the store's core, or "models", the SDK's FeatureFlag objects),
        "report" (init: also count what was stored), "admin_endpoint"
        (optional: where the table is made, scanned and deleted; "endpoint"
        by default)}
stdout: [{"wall": s, "cpu": s, "requests": n, "server_cpu": s}, ...] one per run;
        with "report", each also has "stored" (item rows) and "marker" (bool),
        and "error" (text) when the Init raised.

init: each run gets a fresh table (created and deleted outside the timing),
and a new store and client. get_all/gets: one store and client for every run,
warmed by one untimed read first (as the benchmark's own side is).
CPU is this process's own user+sys time (resource.getrusage).
"""
import json
import os
import resource
import sys
import time
import uuid

import boto3
from ldclient.feature_store import CacheConfig
from ldclient.integrations import DynamoDB
from ldclient.versioned_data_kind import FEATURES, SEGMENTS


def server_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    spec = json.load(sys.stdin)
    opts = {
        "endpoint_url": spec["endpoint"],
        "region_name": spec["region"],
        "aws_access_key_id": spec["access_key_id"],
        "aws_secret_access_key": spec["secret_access_key"],
    }
    admin = boto3.client("dynamodb", **dict(opts, endpoint_url=spec.get("admin_endpoint", spec["endpoint"])))
    results = []
    data = None
    if spec["op"] == "init":
        with open(spec["data_file"]) as f:
            raw = json.load(f)
        data = {SEGMENTS: raw["segments"], FEATURES: raw["flags"]}
    count = [0]
    reads = spec["op"] in ("get_all", "gets")
    if reads:
        store = DynamoDB.new_feature_store(spec["table"], dynamodb_opts=opts, caching=CacheConfig.disabled())
        core = store._core
        if spec["level"] == "json":
            read_all = lambda: core.get_all_internal(FEATURES)  # noqa: E731
            read_one = lambda key: core.get_internal(FEATURES, key)  # noqa: E731
        else:
            read_all = lambda: store.all(FEATURES, lambda x: x)  # noqa: E731
            read_one = lambda key: store.get(FEATURES, key, lambda x: x)  # noqa: E731
        read_all()  # warm: the client, its connection and its credentials
    for _ in range(spec["runs"]):
        table = spec.get("table") or "py-bench-" + uuid.uuid4().hex[:12]
        if spec["op"] == "init":
            admin.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": "namespace", "AttributeType": "S"}, {"AttributeName": "key", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "namespace", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}],
                BillingMode="PAY_PER_REQUEST",
            )
            admin.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.05})
        if not reads:
            store = DynamoDB.new_feature_store(table, dynamodb_opts=opts, caching=CacheConfig.disabled())
        client = store._core._client
        count[0] = 0
        # Once per client (a read store keeps its client across runs).
        client.meta.events.register(
            "before-send.dynamodb", lambda **kw: count.__setitem__(0, count[0] + 1), unique_id="bench-count"
        )
        wall0, cpu0, server0 = time.perf_counter(), cpu(), server_cpu(spec["server_pid"])
        error = None
        if spec["op"] == "init":
            try:
                store.init(data)
            except Exception as e:  # reported, so that the store's failure is a row
                if not spec.get("report"):
                    raise
                error = f"{type(e).__name__}: {e}"
        elif spec["op"] == "get_all":
            items = read_all()
            assert len(items) == spec["expect"], len(items)
        elif spec["op"] == "gets":
            for key in spec["keys"]:
                assert read_one(key) is not None
        wall, used = time.perf_counter() - wall0, cpu() - cpu0
        result = {"wall": wall, "cpu": used, "requests": count[0], "server_cpu": server_cpu(spec["server_pid"]) - server0}
        if spec.get("report"):
            rows = [
                item["namespace"]["S"]
                for page in admin.get_paginator("scan").paginate(TableName=table)
                for item in page["Items"]
            ]
            result["stored"] = sum(1 for ns in rows if ns in ("features", "segments"))
            result["marker"] = "$inited" in rows
            if error is not None:
                result["error"] = error
        results.append(result)
        if spec["op"] == "init":
            admin.delete_table(TableName=table)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
