#!/usr/bin/env python3
"""Decode a trailsight-gen output tree and print the facts worth checking by eye.

Usage: inspect.py OUT_DIR

Per account/region/day counts (by eventTime), write and error fractions, record sizes,
duplicates, late-evening records in the next day's folder, the RunInstances facts of the
sample, and total size / file count.
"""
import collections
import glob
import gzip
import json
import os
import sys


def main(root):
    logs = sorted(glob.glob(os.path.join(root, "**", "CloudTrail", "*", "*", "*", "*", "*.json.gz"), recursive=True))
    digests = glob.glob(os.path.join(root, "**", "CloudTrail-Digest", "**", "*.json.gz"), recursive=True)
    per_day = collections.Counter()
    seen = {}
    dups = writes = errors = sizes = 0
    codes = collections.Counter()
    apis = collections.Counter()
    kinds = collections.Counter()
    versions = collections.Counter()
    cross_midnight = 0
    run_instances = []
    for path in logs:
        folder_day = "-".join(path.split(os.sep)[-4:-1])
        records = json.loads(gzip.open(path).read())["Records"]
        for r in records:
            if r["eventID"] in seen:
                dups += 1
                continue
            seen[r["eventID"]] = True
            sizes += len(json.dumps(r, separators=(",", ":")))
            day = r["eventTime"][:10]
            per_day[(r["recipientAccountId"], r["awsRegion"], day)] += 1
            writes += not r["readOnly"]
            apis[(r["eventSource"], r["eventName"])] += 1
            kinds[(r["eventType"], r["userIdentity"].get("type"))] += 1
            versions[r["eventVersion"]] += 1
            if "errorCode" in r:
                errors += 1
                codes[r["errorCode"]] += 1
            if day < folder_day:
                cross_midnight += 1
            if r["eventName"] == "RunInstances" and r["recipientAccountId"] == "123456789012" and r["awsRegion"] == "us-east-1":
                run_instances.append((r["eventTime"], r["userIdentity"].get("arn"), r["userAgent"]))
    n = len(seen)
    print(f"log files {len(logs)}, digest files {len(digests)}, records {n}, duplicate deliveries {dups}")
    print(f"write fraction {writes / n:.3f}, error fraction {errors / n:.3f}, mean record {sizes / n:.0f} bytes")
    print(f"records in a later day's folder than their eventTime: {cross_midnight}")
    print("eventVersion", dict(sorted(versions.items())))
    print("eventType/identity", dict(kinds.most_common()))
    print("top errors", codes.most_common(12))
    print(f"distinct APIs {len(apis)}, services {len({s for s, _ in apis})}")
    print("top APIs", apis.most_common(15))
    print("per account/region/day (eventTime):")
    for key in sorted(per_day):
        print("  ", *key, per_day[key])
    run_instances.sort()
    before = [r for r in run_instances if r[0] < "2019-11-07T13:25:00Z"]
    burst = [r for r in run_instances if r[0].startswith("2019-11-07T13:25:")]
    print(f"RunInstances 123456789012/us-east-1: {len(before)} before the burst "
          f"(first {before[0][0] if before else None}), {len(burst)} in 13:25, "
          f"{len({(b[1], b[2]) for b in burst})} identity/agent pair(s) in the burst, {len(run_instances)} total")
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(root, "**"), recursive=True) if os.path.isfile(p))
    print(f"apparent size {total / 1e6:.2f} MB in {len(logs) + len(digests) + 1} files")


if __name__ == "__main__":
    main(sys.argv[1])
