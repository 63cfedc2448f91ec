"""The data of scripts/eval-data-events (a first check, ahead of data-event cases in the project generator): 9 days of data-event traffic for one
account/region, with labelled anomalies on days 8-9. Writes AWSLogs/... gz files, 5-minute objects."""
import gzip, json, math, os, random, sys, uuid, datetime as dt
out = sys.argv[1]; seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
anomalies = sys.argv[3] == "1" if len(sys.argv) > 3 else True
rnd = random.Random(seed)
ACCT = "123456789012"; REG = "us-east-1"
day0 = dt.datetime(2024, 3, 4, tzinfo=dt.timezone.utc)  # a Monday
DAYS = 9
def poisson(lam):
    if lam <= 0: return 0
    if lam > 50: return max(0, int(rnd.gauss(lam, math.sqrt(lam)) + 0.5))
    L = math.exp(-lam); k = 0; p = 1.0
    while True:
        p *= rnd.random()
        if p <= L: return k
        k += 1
def diurnal(m):  # minute of day -> factor 0.4..1.6, peak 15:00 UTC
    return 1 + 0.6 * math.sin((m - 540) / 1440 * 2 * math.pi)
def od(lam, shape=8.0):  # gamma-mixed rate: overdispersed
    return rnd.gammavariate(shape, lam / shape) if lam > 0 else 0
labels = []
def events_for(minute):
    """(name, source, arn principal, ua, error, bucket, readOnly) lists for one minute."""
    d, m = divmod(minute, 1440)
    ev = []
    # steady high-volume reader
    for _ in range(poisson(od(30 * diurnal(m)))):
        ev.append(("GetObject", "reader", "aws-sdk-java/1.12", None, "data-lake", True))
    # nightly batch 01:00-01:30 UTC (ETL), 20x the reader
    if 60 <= m < 90:
        for _ in range(poisson(od(600))):
            ev.append(("GetObject", "etl", "aws-sdk-java/1.12 spark", None, "data-lake", True))
        for _ in range(poisson(od(100))):
            ev.append(("PutObject", "etl", "aws-sdk-java/1.12 spark", None, "curated", False))
    # log delivery: steady PutObject, a steady AccessDenied stream
    for _ in range(poisson(20)):
        ev.append(("PutObject", "delivery", "delivery.logs.amazonaws.com", None, "logs", False))
    for _ in range(poisson(2)):
        ev.append(("PutObject", "delivery", "delivery.logs.amazonaws.com", "AccessDenied", "other-logs", False))
    # per-request Lambda invokes
    for _ in range(poisson(od(15 * diurnal(m)))):
        ev.append(("Invoke", "api", "apigateway.amazonaws.com", None, "fn", False))
    # rare deletes
    for _ in range(poisson(0.05)):
        ev.append(("DeleteObject", "janitor", "aws-cli/2", None, "data-lake", False))
    return ev
A = []  # (name, start minute, minutes, kind, params)
if anomalies:
    base7 = 7 * 1440
    A = [("exfil10x", base7 + 14 * 60, 5, "GetObject", 10), ("exfil30x", base7 + 1440 + 10 * 60, 4, "GetObject", 30),
         ("exfil10x-b", base7 + 1440 + 20 * 60, 3, "GetObject", 10),
         ("massdelete", base7 + 18 * 60, 3, "DeleteObject", 300),
         ("newerror", base7 + 1440 + 16 * 60, 120, "GetObjectDenied", 5)]
def anomaly_events(minute):
    ev = []
    for name, start, length, kind, x in A:
        if start <= minute < start + length:
            m = minute % 1440
            if kind == "GetObject":
                for _ in range(poisson(30 * diurnal(m) * x)):
                    ev.append(("GetObject", "intruder", "python-requests/2.31", None, "data-lake", True))
            elif kind == "DeleteObject":
                for _ in range(poisson(x)):
                    ev.append(("DeleteObject", "intruder", "aws-cli/2", None, "data-lake", False))
            else:
                for _ in range(poisson(x)):
                    ev.append(("GetObject", "scanner", "curl/8", "AccessDenied", "secrets", True))
    return ev
src = {"GetObject": "s3.amazonaws.com", "PutObject": "s3.amazonaws.com", "DeleteObject": "s3.amazonaws.com", "Invoke": "lambda.amazonaws.com"}
n = 0; obj = 0
for start in range(0, DAYS * 1440, 5):
    recs = []
    for minute in range(start, start + 5):
        t0 = day0 + dt.timedelta(minutes=minute)
        for (name, who, ua, err, res, ro) in events_for(minute) + anomaly_events(minute):
            t = t0 + dt.timedelta(seconds=rnd.randrange(60))
            if name == "Invoke":
                resources = [{"accountId": ACCT, "type": "AWS::Lambda::Function", "ARN": f"arn:aws:lambda:{REG}:{ACCT}:function:{res}"}]
            else:
                resources = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{res}/k{rnd.randrange(100000)}"},
                             {"accountId": ACCT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{res}"}]
            r = {"eventVersion": "1.09", "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCT}:assumed-role/{who}/s"},
                 "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": src[name], "eventName": name, "awsRegion": REG,
                 "userAgent": ua, "eventID": str(uuid.UUID(int=rnd.getrandbits(128))), "readOnly": ro, "resources": resources,
                 "eventType": "AwsApiCall", "managementEvent": False, "recipientAccountId": ACCT, "eventCategory": "Data"}
            if err: r["errorCode"] = err
            recs.append(r)
    if not recs: continue
    stamp = day0 + dt.timedelta(minutes=start + 5)
    folder = f"{out}/AWSLogs/{ACCT}/CloudTrail/{REG}/{stamp:%Y/%m/%d}"
    os.makedirs(folder, exist_ok=True)
    name = f"{ACCT}_CloudTrail_{REG}_{stamp:%Y%m%dT%H%M}Z_{uuid.UUID(int=rnd.getrandbits(128)).hex[:16]}.json.gz"
    with open(f"{folder}/{name}", "wb") as f:
        f.write(gzip.compress(json.dumps({"Records": recs}, separators=(",", ":")).encode(), 1))
    n += len(recs); obj += 1
json.dump([{"name": a[0], "start": (day0 + dt.timedelta(minutes=a[1])).strftime("%Y-%m-%dT%H:%M:00Z"), "minutes": a[2], "api": a[3]} for a in A], open(f"{out}/labels.json", "w"))
print(n, "records", obj, "objects", file=sys.stderr)
