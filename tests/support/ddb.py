"""Test helper: runs DynamoDB calls with boto3 (an independent client), and
switches moto's SigV4 checking on.

Usage:
  ddb.py moto-auth ENDPOINT            -> {"access_key_id": ..., "secret_access_key": ...}
  ddb.py calls < {"endpoint", "region", "access_key_id", "secret_access_key", "calls": [[Op, params], ...],
                  "service" (default "dynamodb")}
      -> [result, ...]  (boto3 low-level results without ResponseMetadata)
"""
import json
import sys
import urllib.request

import boto3


def client(service, endpoint, region, key, secret):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def moto_auth(endpoint):
    # While checking is off, moto accepts any key: create a user with full
    # DynamoDB rights and a key, then switch checking on.
    iam = client("iam", endpoint, "us-east-1", "bootstrap", "bootstrap")
    iam.create_user(UserName="ld-dynamodb-test")
    iam.put_user_policy(
        UserName="ld-dynamodb-test",
        PolicyName="dynamodb-all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["dynamodb:*", "iam:*"], "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="ld-dynamodb-test")["AccessKey"]
    request = urllib.request.Request(
        endpoint.rstrip("/") + "/moto-api/reset-auth",
        data=b"0",
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    urllib.request.urlopen(request).read()
    print(json.dumps({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}))


def snake(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def calls(spec):
    ddb = client(spec.get("service", "dynamodb"), spec["endpoint"], spec["region"], spec["access_key_id"], spec["secret_access_key"])
    results = []
    for op, params in spec["calls"]:
        result = getattr(ddb, snake(op))(**params)
        result.pop("ResponseMetadata", None)
        results.append(result)
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    if sys.argv[1] == "moto-auth":
        moto_auth(sys.argv[2])
    elif sys.argv[1] == "calls":
        calls(json.load(sys.stdin))
    else:
        sys.exit("unknown command " + sys.argv[1])
