#!/usr/bin/env python3
"""Labelled data-event traffic for the detector evaluation (issue 18), one seed per call.

Usage: gen.py OUT SEED [--clean]

Writes 10 days (Monday 2024-03-04 + 10) of CloudTrail for one account in two regions (the
second at half the volume), in the AWSLogs layout, 5-minute objects, plus `labels.json`. The
last 3 days are the analysed ones (`analyse` in labels.json); the first 7 are their baseline.

Background (everything recurs within a week, as habits do; rates are gamma-mixed Poisson, i.e.
overdispersed like real traffic):

- a steady S3 `GetObject` reader on a data-lake bucket with a day/night swing (+-60 %),
  12/min at the mean in the home region;
- a nightly ETL batch in the same `GetObject` series at a fixed UTC minute drawn per region
  (20-30 minutes at 15-25x the reader, start 0-10 minutes late, 10 % of nights skipped),
  writing `PutObject` at 3x the reader while it runs;
- log delivery: `PutObject` 8/min and a steady `AccessDenied` stream of 1/min;
- per-request Lambda `Invoke` (6/min, day/night swing), rare `DeleteObject` (one an hour);
- read-only management calls a monitoring agent and applications make (`DescribeInstances`,
  `ListBuckets`, `GetSecretValue`, KMS `Decrypt`), which only `--call-rate-events all` counts.

Labelled anomalies, one of each per region, at random minutes of the analysed days (never
within 90 minutes of the batch, never overlapping each other), by a principal never seen:

| scenario | what |
|---|---|
| `exfil` | `GetObject` on the busy bucket at R x the reader's rate, R log-uniform 10-100, 3-15 min |
| `mass-delete` | `DeleteObject` 30-300/min, 3-10 min |
| `reencrypt` | `PutObject` (SSE-KMS with the attacker's key) at R x the `PutObject` rate, R 10-50, 3-10 min |
| `invoke-storm` | Lambda `Invoke` at R x its rate, R 10-50, 3-20 min |
| `recon` | one read-only management API (`DescribeInstances`, `ListBuckets`, `GetSecretValue`, `Decrypt`) at R x its rate (at least 5/min), R 10-50, 3-10 min; a call-rate anomaly only under `--call-rate-events all` |
| `error-stream` | a new error stream: `GetObject` `AccessDenied` 3-10/min for 1-3 hours (must open one Insight, at its start) |

`--clean` writes the same background counts (the anomalies draw from random streams of their
own) without the anomalies. Standard library only; about 0.5 M records a seed.
"""
import datetime as dt
import gzip
import json
import math
import os
import random
import sys
import uuid

ACCT = "444455556666"
REGIONS = [("us-east-1", 1.0), ("eu-west-1", 0.5)]
DAY0 = dt.datetime(2024, 3, 4, tzinfo=dt.timezone.utc)  # a Monday
DAYS = 10
ANALYSED_FROM = 7  # days 7, 8, 9 (0-based) are analysed
SRC = {"GetObject": "s3.amazonaws.com", "PutObject": "s3.amazonaws.com",
       "DeleteObject": "s3.amazonaws.com", "Invoke": "lambda.amazonaws.com",
       "DescribeInstances": "ec2.amazonaws.com", "ListBuckets": "s3.amazonaws.com",
       "GetSecretValue": "secretsmanager.amazonaws.com", "Decrypt": "kms.amazonaws.com"}
DATA_APIS = {"GetObject", "PutObject", "DeleteObject", "Invoke"}
RECON = {"DescribeInstances": 1.0, "ListBuckets": 0.05, "GetSecretValue": 0.5, "Decrypt": 4.0}


def main() -> None:
    out, seed = sys.argv[1], int(sys.argv[2])
    clean = "--clean" in sys.argv[3:]
    bg = random.Random(seed)  # background
    an = random.Random(seed * 7919 + 1)  # anomaly plan (same with --clean)
    ids = random.Random(seed * 104729 + 2)  # eventIDs and keys

    burst = random.Random(seed * 31 + 3)  # anomalies' counts

    def poisson(lam: float, rng: random.Random = bg) -> int:
        if lam <= 0:
            return 0
        if lam > 40:
            return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1

    def od(lam: float, shape: float = 8.0) -> float:
        return bg.gammavariate(shape, lam / shape) if lam > 0 else 0.0

    def diurnal(m: int) -> float:  # minute of day -> 0.4..1.6, peak 15:00 UTC
        return 1 + 0.6 * math.sin((m - 540) / 1440 * 2 * math.pi)

    plans = {}
    labels = []
    for region, scale in REGIONS:
        batch_at = an.randrange(1440)
        batch = {}
        for d in range(DAYS):
            if an.random() < 0.1:
                continue
            start = d * 1440 + batch_at + an.randrange(11)
            batch[d] = (start, start + an.randrange(20, 31), an.uniform(15, 25))
        busy = []  # minutes taken by the batch and by earlier anomalies (+- margins)

        def free(s: int, n: int, margin: int) -> bool:
            return all(s + n + margin <= a or b + margin <= s for a, b in busy)

        for a, b, _ in batch.values():
            busy.append((a, b))
        plan = []
        specs = [("exfil", "GetObject", None, 10, 100, 3, 15),
                 ("mass-delete", "DeleteObject", None, 0, 0, 3, 10),
                 ("reencrypt", "PutObject", None, 10, 50, 3, 10),
                 ("invoke-storm", "Invoke", None, 10, 50, 3, 20),
                 ("recon", an.choice(sorted(RECON)), None, 10, 50, 3, 10),
                 ("error-stream", "GetObject", "AccessDenied", 0, 0, 60, 180)]
        for name, api, code, rlo, rhi, nlo, nhi in specs:
            n = round(math.exp(an.uniform(math.log(nlo), math.log(nhi))))
            ratio = math.exp(an.uniform(math.log(rlo), math.log(rhi))) if rlo else 0.0
            level = an.uniform(30, 300) if name == "mass-delete" else an.uniform(3, 10)
            for _ in range(1000):
                s = an.randrange(ANALYSED_FROM * 1440, DAYS * 1440 - n - 30)
                if free(s, n, 90):
                    break
            busy.append((s, s + n))
            plan.append({"scenario": name, "api": api, "errorCode": code, "start": s,
                         "minutes": n, "ratio": ratio, "level": level})
        plans[region] = (scale, batch, plan)
        for p in plan:
            mgmt = p["api"] not in DATA_APIS
            labels.append({
                "id": f"{region}-{p['scenario']}", "scenario": p["scenario"], "account": ACCT,
                "region": region, "eventSource": SRC[p["api"]], "eventName": p["api"],
                "insightType": "ApiErrorRateInsight" if p["errorCode"] else "ApiCallRateInsight",
                "errorCode": p["errorCode"], "category": "Management" if mgmt else "Data",
                "start": stamp(p["start"]), "lastMinute": stamp(p["start"] + p["minutes"] - 1),
                "durationMinutes": p["minutes"], "ratio": round(p["ratio"], 2) or None,
                "perMinute": 0.0})

    def background(region: str, scale: float, batch: dict, minute: int) -> list:
        d, m = divmod(minute, 1440)
        ev = []
        reader = 12 * scale * diurnal(m)
        ev += [("GetObject", "reader", "aws-sdk-java/1.12", None, "data-lake")] * poisson(od(reader))
        b = batch.get(d)
        if b and b[0] <= minute < b[1]:
            ev += [("GetObject", "etl", "aws-sdk-java/1.12 spark", None, "data-lake")] * poisson(od(12 * scale * b[2]))
            ev += [("PutObject", "etl", "aws-sdk-java/1.12 spark", None, "curated")] * poisson(od(36 * scale))
        ev += [("PutObject", "delivery", "delivery.logs.amazonaws.com", None, "logs")] * poisson(8 * scale)
        ev += [("PutObject", "delivery", "delivery.logs.amazonaws.com", "AccessDenied", "other-logs")] * poisson(1 * scale)
        ev += [("Invoke", "api", "apigateway.amazonaws.com", None, "fn")] * poisson(od(6 * scale * diurnal(m)))
        ev += [("DeleteObject", "janitor", "aws-cli/2", None, "data-lake")] * poisson(scale / 60)
        for api, rate in RECON.items():
            ev += [(api, "monitor", "aws-sdk-go/1.44", None, "")] * poisson(od(rate * scale * diurnal(m)))
        return ev

    def anomaly(region: str, scale: float, plan: list, minute: int) -> list:
        def poisson_(lam: float) -> int:
            return poisson(lam, burst)

        ev = []
        m = minute % 1440
        for p in plan:
            if not p["start"] <= minute < p["start"] + p["minutes"]:
                continue
            api, sc = p["api"], p["scenario"]
            if sc == "exfil":
                lam = 12 * scale * diurnal(m) * p["ratio"]
                ev += [("GetObject", "intruder", "python-requests/2.31", None, "data-lake")] * max(1, poisson_(lam))
            elif sc == "mass-delete":
                ev += [("DeleteObject", "intruder", "aws-cli/2", None, "data-lake")] * max(1, poisson_(p["level"]))
            elif sc == "reencrypt":
                ev += [("PutObject", "intruder", "aws-cli/2", None, "data-lake")] * max(1, poisson_(9 * scale * p["ratio"]))
            elif sc == "invoke-storm":
                ev += [("Invoke", "intruder", "python-requests/2.31", None, "fn")] * max(1, poisson_(6 * scale * diurnal(m) * p["ratio"]))
            elif sc == "recon":
                lam = max(5.0, RECON[api] * scale * diurnal(m) * p["ratio"])
                ev += [(api, "intruder", "aws-cli/2", None, "")] * max(1, poisson_(lam))
            else:
                ev += [("GetObject", "scanner", "curl/8", "AccessDenied", "secrets")] * max(1, poisson_(p["level"]))
        return ev

    records = objects = 0
    series = set()  # (region, source, name, insightType, errorCode) with events in analysed days
    for region, (scale, batch, plan) in plans.items():
        for start in range(0, DAYS * 1440, 5):
            recs = []
            for minute in range(start, start + 5):
                t0 = DAY0 + dt.timedelta(minutes=minute)
                events = background(region, scale, batch, minute)
                if not clean:
                    events += anomaly(region, scale, plan, minute)
                for name, who, ua, err, res in events:
                    if minute >= ANALYSED_FROM * 1440:
                        series.add((region, SRC[name], name, "ApiCallRateInsight", None))
                        if err:
                            series.add((region, SRC[name], name, "ApiErrorRateInsight", err))
                    recs.append(record(ids, region, t0 + dt.timedelta(seconds=ids.randrange(60)),
                                       name, who, ua, err, res))
            if not recs:
                continue
            stamp_t = DAY0 + dt.timedelta(minutes=start + 5)
            folder = f"{out}/AWSLogs/{ACCT}/CloudTrail/{region}/{stamp_t:%Y/%m/%d}"
            os.makedirs(folder, exist_ok=True)
            key = uuid.UUID(int=ids.getrandbits(128)).hex[:16]
            path = f"{folder}/{ACCT}_CloudTrail_{region}_{stamp_t:%Y%m%dT%H%M}Z_{key}.json.gz"
            with open(path, "wb") as f:
                f.write(gzip.compress(json.dumps({"Records": recs}, separators=(",", ":")).encode(), 1))
            records += len(recs)
            objects += 1
    first = DAY0 + dt.timedelta(days=ANALYSED_FROM)
    last = DAY0 + dt.timedelta(days=DAYS - 1)
    doc = {"seed": seed, "clean": clean, "analyse": [f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"],
           "anomalies": [] if clean else labels,
           "series": [dict(zip(("region", "eventSource", "eventName", "insightType", "errorCode"), k))
                      for k in sorted(series, key=str)],
           # The nightly batch's runs: Insights on them are false, reported apart.
           "runs": [{"account": ACCT, "region": region, "start": stamp(a), "lastMinute": stamp(b - 1),
                     "habitual": sum(1 for dd in range(max(0, a // 1440 - 7), a // 1440) if dd in batch) >= 5}
                    for region, (_, batch, _) in plans.items() for a, b, _ in batch.values()]}
    with open(f"{out}/labels.json", "w") as f:
        json.dump(doc, f, indent=1)
    print(f"{records} records, {objects} objects", file=sys.stderr)


def stamp(minute: int) -> str:
    return (DAY0 + dt.timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:00Z")


def record(ids, region, t, name, who, ua, err, res) -> dict:
    data = name in DATA_APIS
    if name == "Invoke":
        resources = [{"accountId": ACCT, "type": "AWS::Lambda::Function",
                      "ARN": f"arn:aws:lambda:{region}:{ACCT}:function:{res}"}]
    elif data:
        resources = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{res}/k{ids.randrange(100000)}"},
                     {"accountId": ACCT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{res}"}]
    else:
        resources = None
    r = {"eventVersion": "1.09",
         "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/{who}/s"},
         "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": SRC[name], "eventName": name,
         "awsRegion": region, "userAgent": ua,
         "eventID": str(uuid.UUID(int=ids.getrandbits(128))),
         "readOnly": name in ("GetObject",) or not data, "eventType": "AwsApiCall",
         "managementEvent": not data, "recipientAccountId": ACCT,
         "eventCategory": "Data" if data else "Management"}
    if resources:
        r["resources"] = resources
    if err:
        r["errorCode"] = err
    return r


if __name__ == "__main__":
    main()
