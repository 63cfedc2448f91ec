"""Scores scripts/eval-data-events: each label detected (a Start of its API within 5 minutes of its
start), the Start delay, and every other Insight as false."""
import json, sys, glob, datetime as dt
out, labels_path = sys.argv[1], sys.argv[2]
labels = json.load(open(labels_path))
rows = []
for p in glob.glob(f"{out}/explanations/**/*.jsonl", recursive=True):
    rows += [json.loads(l) for l in open(p) if l.strip()]
t = lambda s: dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
matched = set()
for lab in labels:
    api = "GetObject" if lab["api"].startswith("GetObject") else lab["api"]
    err = "AccessDenied" if lab["api"] == "GetObjectDenied" else None
    hit = [r for r in rows if r["eventName"] == api and r.get("errorCode") == err
           and abs((t(r["startTime"]) - t(lab["start"])).total_seconds()) <= 5 * 60]
    for r in hit: matched.add(r["sharedEventID"])
    delay = min(((t(r["startTime"]) - t(lab["start"])).total_seconds() / 60 for r in hit), default=None)
    print(f"{lab['name']:12} {lab['start']} {lab['minutes']:4} min  detected={bool(hit)} insights={len(hit)} start_delay_min={delay}")
false = [r for r in rows if r["sharedEventID"] not in matched]
print("false insights:", len(false))
for r in false:
    print("  ", r["startTime"], r["eventName"], r.get("errorCode"), r["observedCalls"], round(r["expectedCalls"], 1))
