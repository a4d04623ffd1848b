"""Test helper: LaunchDarkly's official Python server SDK polling the edge flag
server, beside the same SDK reading the same data from a file (the oracle).

stdin, first line: {"base_uri", "sdk_key", "data_file", "contexts": [...],
                    "flags": [...]}
stdout, first line: {"edge": {flag: {context: value}}, "oracle": {...}}
Then it waits for a line on stdin {"flag", "version"} and prints
{"version": V, "seconds": S} once the SDK's own polling sees that version
(or the last version seen after 90 s).
"""
import json
import logging
import sys
import time

import ldclient
from ldclient import Context
from ldclient.config import Config
from ldclient.integrations import Files

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def contexts(spec):
    out = []
    for c in spec:
        builder = Context.builder(c["key"]).kind(c.get("kind", "user"))
        for name, value in c.get("attributes", {}).items():
            builder.set(name, value)
        out.append(builder.build())
    return out


def evaluate(client, flags, ctxs):
    return {
        flag: {ctx.key: client.variation(flag, ctx, None) for ctx in ctxs}
        for flag in flags
    }


def version_seen(client, flag, ctx):
    state = client.all_flags_state(ctx).to_json_dict()
    return state.get("$flagsState", {}).get(flag, {}).get("version")


def main():
    spec = json.loads(sys.stdin.readline())
    ctxs = contexts(spec["contexts"])
    edge = ldclient.LDClient(Config(
        spec["sdk_key"],
        base_uri=spec["base_uri"],
        stream=False,
        send_events=False,
        diagnostic_opt_out=True,
        poll_interval=30,
    ), start_wait=20)
    if not edge.is_initialized():
        raise SystemExit("the SDK did not initialize from the edge server")
    oracle = ldclient.LDClient(Config(
        "file-sdk-key",
        send_events=False,
        diagnostic_opt_out=True,
        update_processor_class=Files.new_data_source(paths=[spec["data_file"]]),
    ), start_wait=10)
    print(json.dumps({
        "edge": evaluate(edge, spec["flags"], ctxs),
        "oracle": evaluate(oracle, spec["flags"], ctxs),
    }), flush=True)
    oracle.close()

    wanted = json.loads(sys.stdin.readline())
    started = time.monotonic()
    seen = None
    while time.monotonic() - started < 90:
        seen = version_seen(edge, wanted["flag"], ctxs[0])
        if seen == wanted["version"]:
            break
        time.sleep(0.5)
    print(json.dumps({"version": seen, "seconds": round(time.monotonic() - started, 1)}), flush=True)
    edge.close()


if __name__ == "__main__":
    main()
