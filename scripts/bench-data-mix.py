#!/usr/bin/env python3
"""The data-heavy mix of scripts/bench (issue 23): a trail that logs S3 and Lambda data events
beside its management events, delivered in large files.

    scripts/bench-data-mix.py OUT [--records N] [--per-file N] [--seed N]

Writes OUT/AWSLogs/<org>/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz (gzip level 6, as
trailsight-gen), 2 accounts x 2 regions over 3 days. About 85% of the records are data events
(S3 GetObject, PutObject, HeadObject, DeleteObject with their `resources[]` of an object and its
bucket, `additionalEventData`, `tlsDetails`; Lambda Invoke), some with AccessDenied, and about
15% management events (AssumeRole, Describe*, PutMetricData, ...). Object keys are drawn from a
large key space, so the resource ARNs are mostly distinct, as in a bulk read. Deterministic for
a seed. Prints `files records json_bytes`.
"""
import argparse
import datetime as dt
import gzip
import json
import random
from multiprocessing import Pool
from pathlib import Path

ORG = "o-7x2kq9datamx"
ACCOUNTS = ["411111111111", "422222222222"]
REGIONS = ["us-east-1", "eu-west-1"]
DAYS = 3
START = dt.datetime(2024, 3, 4, tzinfo=dt.timezone.utc)
BUCKETS = ["data-lake", "curated", "logs", "ml-features", "backups"]
ROLES = ["EtlJob", "Reader", "Analytics", "Deploy", "Backup"]
AGENTS = [
    "[aws-sdk-java/1.12.470 Linux/5.10.219-208.866.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.9+8-LTS java/17.0.9 vendor/Amazon.com_Inc. cfg/retry-mode/standard]",
    "[Boto3/1.34.51 md/Botocore#1.34.51 ua/2.0 os/linux#5.15.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.51]",
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023 prompt/off command/s3.cp",
    "[aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/s3#1.51.1]",
]
CIPHER = "ECDHE-RSA-AES128-GCM-SHA256"


def uuid(rnd):
    h = f"{rnd.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def identity(rnd, account):
    role = rnd.choice(ROLES)
    session = f"i-0{rnd.getrandbits(60):015x}"
    return {
        "type": "AssumedRole",
        "principalId": f"AROA{rnd.getrandbits(64):016X}:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": f"ASIA{rnd.getrandbits(64):016X}",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": f"AROA{rnd.getrandbits(48):012X}",
                              "arn": f"arn:aws:iam::{account}:role/{role}", "accountId": account,
                              "userName": role},
            "attributes": {"creationDate": "2024-03-04T00:00:00Z", "mfaAuthenticated": "false"},
            "ec2RoleDelivery": "2.0",
        },
    }


def s3_event(rnd, account, region, time, name):
    bucket = rnd.choice(BUCKETS)
    key = (f"raw/year=2024/month=03/day={rnd.randrange(1, 29):02d}/"
           f"part-{rnd.randrange(100000):05d}-{uuid(rnd)}.c000.snappy.parquet")
    host = f"{bucket}.s3.{region}.amazonaws.com"
    read_only = name in ("GetObject", "HeadObject")
    record = {
        "eventVersion": "1.09",
        "userIdentity": identity(rnd, account),
        "eventTime": time,
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}",
        "userAgent": rnd.choice(AGENTS),
        "requestParameters": {"bucketName": bucket, "Host": host, "key": key},
        "responseElements": None if read_only else {
            "x-amz-server-side-encryption": "aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id":
                f"arn:aws:kms:{region}:{account}:key/{uuid(rnd)}",
            "x-amz-server-side-encryption-bucket-key-enabled": "true"},
        "additionalEventData": {
            "SignatureVersion": "SigV4", "CipherSuite": CIPHER,
            "bytesTransferredIn": 0 if read_only else rnd.randrange(1, 1 << 27),
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": "".join(rnd.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789+/")
                                  for _ in range(76)),
            "bytesTransferredOut": rnd.randrange(1, 1 << 27) if name == "GetObject" else 0,
        },
        "requestID": f"{rnd.getrandbits(64):016X}",
        "eventID": uuid(rnd),
        "readOnly": read_only,
        "resources": [
            {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
            {"accountId": account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
        ],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": account,
        "eventCategory": "Data",
        "tlsDetails": {"tlsVersion": "TLSv1.2", "cipherSuite": CIPHER,
                       "clientProvidedHostHeader": host},
    }
    if rnd.random() < 0.02:
        record["errorCode"] = "AccessDenied"
        record["errorMessage"] = "Access Denied"
        record["responseElements"] = None
    return record


def lambda_event(rnd, account, region, time):
    function = f"arn:aws:lambda:{region}:{account}:function:api-{rnd.randrange(12)}"
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "AWSService", "invokedBy": "apigateway.amazonaws.com"},
        "eventTime": time, "eventSource": "lambda.amazonaws.com", "eventName": "Invoke",
        "awsRegion": region, "sourceIPAddress": "apigateway.amazonaws.com",
        "userAgent": "apigateway.amazonaws.com",
        "requestParameters": {"functionName": function, "sourceArn":
                              f"arn:aws:execute-api:{region}:{account}:abc123/prod/POST/items"},
        "responseElements": None,
        "additionalEventData": {"functionVersion": f"{function}:$LATEST"},
        "requestID": uuid(rnd), "eventID": uuid(rnd), "readOnly": False,
        "resources": [{"accountId": account, "type": "AWS::Lambda::Function", "ARN": function}],
        "eventType": "AwsApiCall", "managementEvent": False, "recipientAccountId": account,
        "sharedEventID": uuid(rnd), "eventCategory": "Data",
    }


MANAGEMENT = [
    ("sts.amazonaws.com", "AssumeRole", True),
    ("ec2.amazonaws.com", "DescribeInstances", True),
    ("monitoring.amazonaws.com", "PutMetricData", False),
    ("kms.amazonaws.com", "Decrypt", True),
    ("kms.amazonaws.com", "GenerateDataKey", True),
    ("ec2.amazonaws.com", "CreateTags", False),
    ("glue.amazonaws.com", "BatchCreatePartition", False),
]


def management_event(rnd, account, region, time):
    source, name, read_only = rnd.choice(MANAGEMENT)
    record = {
        "eventVersion": "1.08", "userIdentity": identity(rnd, account), "eventTime": time,
        "eventSource": source, "eventName": name, "awsRegion": region,
        "sourceIPAddress": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}",
        "userAgent": rnd.choice(AGENTS),
        "requestParameters": {"roleArn": f"arn:aws:iam::{account}:role/{rnd.choice(ROLES)}",
                              "roleSessionName": f"s-{rnd.getrandbits(32):08x}",
                              "durationSeconds": 3600},
        "responseElements": None,
        "requestID": uuid(rnd), "eventID": uuid(rnd), "readOnly": read_only,
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if name == "Decrypt":
        record["resources"] = [{"accountId": account, "type": "AWS::KMS::Key",
                                "ARN": f"arn:aws:kms:{region}:{account}:key/{uuid(rnd)}"}]
    return record


def one_file(job):
    out, seed, account, region, start, minutes, records = job
    rnd = random.Random(f"{seed}/{account}/{region}/{start.isoformat()}")
    recs = []
    for _ in range(records):
        t = start + dt.timedelta(seconds=rnd.randrange(minutes * 60))
        time = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        draw = rnd.random()
        if draw < 0.45:
            recs.append(s3_event(rnd, account, region, time, "GetObject"))
        elif draw < 0.65:
            recs.append(s3_event(rnd, account, region, time, "PutObject"))
        elif draw < 0.72:
            recs.append(s3_event(rnd, account, region, time, "HeadObject"))
        elif draw < 0.74:
            recs.append(s3_event(rnd, account, region, time, "DeleteObject"))
        elif draw < 0.85:
            recs.append(lambda_event(rnd, account, region, time))
        else:
            recs.append(management_event(rnd, account, region, time))
    recs.sort(key=lambda r: r["eventTime"])
    end = start + dt.timedelta(minutes=minutes)
    folder = (Path(out) / "AWSLogs" / ORG / account / "CloudTrail" / region /
              f"{start:%Y}" / f"{start:%m}" / f"{start:%d}")
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{account}_CloudTrail_{region}_{end:%Y%m%dT%H%MZ}_{rnd.getrandbits(64):016x}.json.gz"
    body = json.dumps({"Records": recs}, separators=(",", ":")).encode()
    (folder / name).write_bytes(gzip.compress(body, compresslevel=6, mtime=0))
    return len(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--records", type=int, default=400_000)
    parser.add_argument("--per-file", type=int, default=2_500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=DAYS,
                        help="days of traffic (more days at the same density: a longer backfill)")
    args = parser.parse_args()
    partitions = [(a, r) for a in ACCOUNTS for r in REGIONS]
    files_per_day = max(1, round(args.records / args.per_file / len(partitions) / args.days))
    minutes = 1440 // files_per_day
    jobs = [(str(args.out), args.seed, a, r, START + dt.timedelta(days=d, minutes=minutes * f),
             minutes, args.per_file)
            for d in range(args.days) for f in range(files_per_day) for a, r in partitions]
    with Pool() as pool:
        sizes = pool.map(one_file, jobs, chunksize=4)
    print(len(jobs), len(jobs) * args.per_file, sum(sizes))


if __name__ == "__main__":
    main()
