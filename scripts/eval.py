#!/usr/bin/env python3
"""trailsight's detector evaluation: generate labelled seeds, analyse them, score, print a table.

Run it through `scripts/eval` (which builds the release binaries first); see docs/evaluation.md
for the scenarios, the matching rules and the measured table.

For each seed N: `trailsight-gen --preset eval --seed N` (with anomalies) and the same with
`--clean` (same background, no anomaly) are generated once and cached under
target/eval/data/; each is analysed with `trailsight analyze --from <first analysed day> --to
<last day>` (the last seven days, each with a full seven-day baseline) into target/eval/runs/,
and every Start record is matched to the labels in anomalies.json.

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOLERANCE_MIN = 2
DEFAULT_FLOOR = 2.0
TARGET_RATIO = 10.0
TARGET_MINUTES = 3
# Scenarios that are spikes above a time-of-day baseline (ramps have no sharp start and new
# APIs no baseline: both are reported on their own).
SPIKE_SCENARIOS = {"spike", "spike-moderate", "spike-short", "spike-faint", "error-storm",
                   "recurring-10x"}
SCENARIO_ORDER = [
    "spike",
    "spike-moderate",
    "spike-short",
    "spike-faint",
    "error-storm",
    "ramp",
    "new-api",
    "recurring-10x",
]
# A recurring job's run is habitual when the job ran within this many minutes of the same time
# of day on at least HABIT_DAYS of the HABIT_LOOKBACK days before (or of the same time of week
# the week before, for a weekly job): the issue's "ran at about the same time on at least 5 of
# the last 7 days". The detector's own knobs are separate; these define the scored class.
HABIT_JITTER_MIN = 15
HABIT_DAYS = 5
HABIT_LOOKBACK = 7


def minute(text: str) -> int:
    """Minutes since the epoch of an RFC 3339 UTC time (seconds dropped)."""
    t = dt.datetime.strptime(text[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp()) // 60


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd: list[str], log: Path) -> None:
    with open(log, "w") as out:
        code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        sys.exit(f"eval: {' '.join(cmd)} failed (exit {code}); see {log}")


# --- generation and analysis, cached -------------------------------------------------------


def generate(gen: Path, gen_hash: str, seed: int, clean: bool, root: Path,
             preset: str = "eval", folder: str = "data") -> Path:
    """`trailsight-gen --preset <preset>` for one seed, with or without its anomalies, cached
    under root/<folder>/ (keyed by the generator's hash and the arguments)."""
    variant = "clean" if clean else "anomalous"
    out = root / folder / f"seed-{seed}" / variant
    args = ["--preset", preset, "--seed", str(seed), "--gzip-level", "1"]
    if clean:
        args.append("--clean")
    stamp = json.dumps({"generator": gen_hash, "args": args})
    stamp_file = out / ".eval-stamp"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run([str(gen), "--out", str(out), *args], out.parent / f"{variant}.gen.log")
    stamp_file.write_text(stamp)
    return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run([str(gen), "--out", str(out), *args], out.parent / f"{variant}.gen.log")
    stamp_file.write_text(stamp)
    return out


def analyse(
    ts: Path, ts_hash: str, data: Path, tag: str, extra: list[str], root: Path
) -> Path:
    labels = json.loads((data / "anomalies.json").read_text())
    end_day = dt.date.fromisoformat(labels["dataEnd"][:10])
    first, last = end_day - dt.timedelta(days=7), end_day - dt.timedelta(days=1)
    out = root / "runs" / tag / data.parent.name / data.name
    args = ["analyze", "--source", str(data), "--out", str(out), "--from", str(first),
            "--to", str(last), "--quiet", *extra]
    stamp = json.dumps({"trailsight": ts_hash, "args": args,
                        "data": (data / ".eval-stamp").read_text()})
    stamp_file = out / ".eval-stamp"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run([str(ts), *args], out.parent / f"{data.name}.analyze.log")
    stamp_file.write_text(stamp)
    return out


# --- reading results ------------------------------------------------------------------------


def starts(out: Path) -> list[dict]:
    """Every Start record written, flattened, with its explanation when there is one."""
    explanations = {}
    for path in sorted(out.glob("explanations/**/*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                e = json.loads(line)
                explanations[e["sharedEventID"]] = e
    found = []
    for path in sorted(out.glob("AWSLogs/**/CloudTrail-Insight/**/*.json.gz")):
        with gzip.open(path, "rt") as f:
            for r in json.load(f)["Records"]:
                d = r["insightDetails"]
                if d["state"] != "Start":
                    continue
                found.append({
                    "account": r["recipientAccountId"],
                    "region": r["awsRegion"],
                    "eventSource": d["eventSource"],
                    "eventName": d["eventName"],
                    "insightType": d["insightType"],
                    "errorCode": d.get("errorCode"),
                    "minute": minute(r["eventTime"]),
                    "eventTime": r["eventTime"],
                    "explanation": explanations.get(r["sharedEventID"]),
                })
    return found


def api_keys(data: Path, first_minute: int, last_minute: int) -> int:
    """Series (API-keys) with at least one event in the analysed days."""
    doc = json.loads((data / "series.json").read_text())
    first_day = dt.datetime.fromtimestamp(first_minute * 60, dt.timezone.utc).date()
    last_day = dt.datetime.fromtimestamp(last_minute * 60, dt.timezone.utc).date()
    n = 0
    for s in doc["series"]:
        if any(first_day <= dt.date.fromisoformat(d) <= last_day for d in s["days"]):
            n += 1
    return n


def recurring_runs(data: Path) -> list[dict]:
    """The runs of scheduled jobs (`recurring.json`), each marked habitual or not."""
    path = data / "recurring.json"
    if not path.exists():
        return []
    runs = json.loads(path.read_text())["runs"]
    by_job: dict = {}
    for r in runs:
        r["startMinute"], r["lastMinuteN"] = minute(r["start"]), minute(r["lastMinute"])
        key = (r["account"], r["region"], r["eventSource"], r["eventName"], r["job"])
        by_job.setdefault(key, []).append(r["startMinute"])

    def ran_near(starts: list[int], at: int) -> bool:
        return any(abs(s - at) <= HABIT_JITTER_MIN for s in starts)

    for r in runs:
        starts = by_job[(r["account"], r["region"], r["eventSource"], r["eventName"], r["job"])]
        if r["schedule"] == "weekly":
            r["habitual"] = ran_near(starts, r["startMinute"] - 7 * 1440)
        else:
            days = sum(1 for d in range(1, HABIT_LOOKBACK + 1)
                       if ran_near(starts, r["startMinute"] - d * 1440))
            r["habitual"] = days >= HABIT_DAYS
    return runs


def on_run(runs: list[dict], start: dict) -> dict | None:
    """The recurring job's run a Start lies on (same series, from 2 minutes before the run's
    first minute to 2 minutes after its last), if any."""
    for r in runs:
        if (same_key(r, start)
                and r["startMinute"] - TOLERANCE_MIN <= start["minute"]
                <= r["lastMinuteN"] + TOLERANCE_MIN):
            return r
    return None


# --- scoring ---------------------------------------------------------------------------------


def same_series(label: dict, start: dict) -> bool:
    return all(label[k] == start[k] for k in ("account", "region", "eventSource", "eventName"))


def same_key(label: dict, start: dict) -> bool:
    return (same_series(label, start) and label["insightType"] == start["insightType"]
            and (label.get("errorCode") or None) == (start.get("errorCode") or None))


def in_window(label: dict, start: dict) -> bool:
    return (minute(label["start"]) - TOLERANCE_MIN <= start["minute"]
            <= minute(label["lastMinute"]) + TOLERANCE_MIN)


def classify(label: dict, floor: float) -> dict:
    """The label's numbers and class memberships."""
    tod = label["baselineTimeOfDayCount"] / max(label["baselineTimeOfDayMinutes"], 1)
    injected = label["injectedPerMinute"]
    ratio = math.inf if tod == 0 else (injected + tod) / tod
    spike_like = label["scenario"] in SPIKE_SCENARIOS
    big = (ratio >= TARGET_RATIO and injected >= floor
           and label["durationMinutes"] >= TARGET_MINUTES)
    return {
        "ratio": ratio,
        "tod": tod,
        # The target: >= 10x the time-of-day baseline of a series that has one, at least
        # the absolute floor, lasting >= 3 minutes.
        "target": spike_like and big and label["baselineCount"] > 0,
        # The same without requiring a baseline (new error codes, new APIs).
        "broad": (spike_like or label["scenario"] == "new-api") and big,
    }


def score_seed(labels: list[dict], found: list[dict], floor: float) -> dict:
    result = {"labels": [], "tp": 0, "fp": [], "collateral": 0, "duplicates": 0}
    claimed = set()
    for label in labels:
        hits = sorted((s for s in found if same_key(label, s) and in_window(label, s)),
                      key=lambda s: s["minute"])
        entry = dict(label)
        entry.update(classify(label, floor))
        entry["found"] = hits[0] if hits else None
        entry["error"] = hits[0]["minute"] - minute(label["start"]) if hits else None
        # For a miss: the last Start of the same series in the 2 hours before (an episode that
        # was already open, or opened early, when the anomaly began).
        before = [s for s in found if same_key(label, s)
                  and minute(label["start"]) - 120 <= s["minute"] < minute(label["start"]) - TOLERANCE_MIN]
        entry["earlier"] = max(before, key=lambda s: s["minute"]) if before and not hits else None
        result["labels"].append(entry)
        result["duplicates"] += max(len(hits) - 1, 0)
        claimed.update(id(s) for s in hits)
    for s in found:
        if id(s) in claimed:
            result["tp"] += 1
        elif any(same_series(l, s) and in_window(l, s) for l in labels):
            result["collateral"] += 1
        else:
            result["fp"].append(s)
    return result


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def ratio_text(num: int, den: int) -> str:
    return f"{num / den:.3f} ({num}/{den})" if den else "n/a (0/0)"


def describe(s: dict) -> str:
    e = s.get("explanation") or {}
    code = f" {s['errorCode']}" if s.get("errorCode") else ""
    return (f"{s['account']} {s['region']} {s['eventName']}{code} at {s['eventTime']}: "
            f"{e.get('observedCalls', '?')} calls in {e.get('windowMinutes', '?')} min vs "
            f"{e.get('expectedCalls', float('nan')):.3g} expected, "
            f"p={e.get('tailProbability', float('nan')):.2g}"
            f"{' (new API)' if e.get('newApi') else ''}")


# --- data events (issue 18) -------------------------------------------------------------------

DATA_FLAGS = ["--event-categories", "management,data", "--call-rate-events", "all"]
DATA_SCENARIOS = ["exfil", "mass-delete", "reencrypt", "invoke-storm", "recon", "error-stream"]


def generate_data(gen: Path, gen_hash: str, seed: int, clean: bool, root: Path) -> Path:
    """`trailsight-gen --preset eval-data` for one seed, with or without its anomalies, cached."""
    return generate(gen, gen_hash, seed, clean, root, preset="eval-data", folder="data-events")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run([str(gen), "--out", str(out), *args], out.parent / f"{variant}.gen.log")
    stamp_file.write_text(stamp)
    return out


def analysed_days(doc: dict) -> tuple[str, str]:
    """The first and last analysed day of an eval-data run (its last three days)."""
    last = dt.date.fromisoformat(doc["dataEnd"][:10]) - dt.timedelta(days=1)
    return doc["analyseFrom"][:10], str(last)


def analyse_data(ts: Path, ts_hash: str, data: Path, tag: str, extra: list[str], root: Path) -> Path:
    first, last = analysed_days(json.loads((data / "anomalies.json").read_text()))
    out = root / "runs" / tag / "data-events" / data.parent.name / data.name
    args = ["analyze", "--source", str(data), "--out", str(out), "--from", first,
            "--to", last, "--quiet", *DATA_FLAGS, *extra]
    stamp = json.dumps({"trailsight": ts_hash, "args": args,
                        "data": (data / ".eval-stamp").read_text()})
    stamp_file = out / ".eval-stamp"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run([str(ts), *args], out.parent / f"{data.name}.analyze.log")
    stamp_file.write_text(stamp)
    return out


def data_event_rows(gen: Path, gen_hash: str, ts: Path, ts_hash: str, a,
                    seeds: range) -> tuple[list, list, list]:
    """Scores the data-event seeds: (table rows, labels, false Insights on the clean variants)."""
    labels_all, false_all, unexplained, weeks, runs_n, habitual_n = [], [], 0, 0.0, 0, 0
    for seed in seeds:
        anomalous = generate_data(gen, gen_hash, seed, False, a.root)
        clean = generate_data(gen, gen_hash, seed, True, a.root)
        out_a = analyse_data(ts, ts_hash, anomalous, a.tag, a.trailsight_args, a.root)
        out_c = analyse_data(ts, ts_hash, clean, a.tag, a.trailsight_args, a.root)
        doc = json.loads((anomalous / "anomalies.json").read_text())
        labels = [dict(l, seed=seed) for l in doc["anomalies"]]
        found = starts(out_a)
        s = {"labels": [], "fp": 0}
        claimed = set()
        for label in labels:
            hits = sorted((f for f in found if same_key(label, f) and in_window(label, f)),
                          key=lambda f: f["minute"])
            claimed.update(id(f) for f in hits)
            s["labels"].append(dict(label, found=hits[0] if hits else None, insights=len(hits),
                                    error=hits[0]["minute"] - minute(label["start"])
                                    if hits else None))
        s["fp"] = sum(1 for f in found if id(f) not in claimed
                      and not any(same_series(l, f) and in_window(l, f) for l in labels))
        labels_all += s["labels"]
        unexplained += s["fp"]
        first, last = analysed_days(doc)
        first_m, last_m = minute(first + "T00:00"), minute(last + "T23:59")
        keys = api_keys(clean, first_m, last_m)
        days = (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1
        weeks += keys * days / 7
        runs = [r for r in recurring_runs(clean) if first_m <= r["startMinute"] <= last_m]
        runs_n += len(runs)
        habitual_n += sum(1 for r in runs if r["habitual"])
        false = [dict(f, seed=seed) for f in starts(out_c)]
        for f in false:
            f["run"] = on_run(runs, f)
        false_all += false
        hit = sum(1 for l in s["labels"] if l["found"])
        print(f"data-event seed {seed:3}: {hit}/{len(labels)} labels found, {s['fp']} "
              f"unexplained Insights; clean: {len(false)} Insights over {keys} API-keys",
              file=sys.stderr)

    def recall(rows):
        return ratio_text(sum(1 for l in rows if l["found"]), len(rows))

    bursts = [l for l in labels_all if l["scenario"] != "error-stream"]
    errors = [abs(l["error"]) for l in labels_all if l["found"]]
    streams = [l for l in labels_all if l["scenario"] == "error-stream"]
    on_runs = [f for f in false_all if f["run"]]
    rows = [
        ("data-event seeds (trailsight-gen --preset eval-data; 3 analysed days, 2 regions)",
         f"{len(seeds)}"),
        ("data-event recall, bursts >= 10x lasting >= 3 min (all scenarios but error-stream)",
         recall(bursts)),
    ]
    for sc in DATA_SCENARIOS:
        group = [l for l in labels_all if l["scenario"] == sc]
        rows.append((f"... scenario {sc}", recall(group)))
    rows += [
        ("data-event error streams opening exactly one Insight",
         ratio_text(sum(1 for l in streams if l["insights"] == 1), len(streams))),
        (f"data-event Start within +-{TOLERANCE_MIN} min (of found)",
         ratio_text(sum(1 for e in errors if e <= TOLERANCE_MIN), len(errors))),
        ("data-event Start error: median / p95 (absolute minutes)",
         f"{percentile(errors, 0.5):.1f} / {percentile(errors, 0.95):.1f}"),
        ("data-event false Insights per API-key per week (clean variants)",
         f"{len(false_all) / weeks if weeks else math.nan:.4f} ({len(false_all)} / "
         f"{weeks:.1f} API-key-weeks)"),
        ("... on the nightly batch's runs (habitual runs / runs analysed)",
         f"{len(on_runs)} ({sum(1 for f in on_runs if f['run']['habitual'])}; "
         f"{habitual_n} / {runs_n})"),
        ("data-event unexplained Insights, anomalous variants", f"{unexplained}"),
    ]
    return rows, labels_all, false_all


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=20, help="number of seeds (default 20)")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--floor", type=float, default=DEFAULT_FLOOR,
                   help="absolute floor of the target class, injected calls/min (default 2)")
    p.add_argument("--root", type=Path, default=REPO / "target" / "eval")
    p.add_argument("--bin-dir", type=Path, default=REPO / "target" / "release")
    p.add_argument("--tag", default="default", help="name of this detector setting's runs")
    p.add_argument("--json", type=Path, help="also write every number and list as JSON here")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--verbose", "-v", action="store_true", help="list misses and false Insights")
    p.add_argument("--data-seeds", type=int, default=5,
                   help="data-event seeds (issue 18; trailsight-gen --preset eval-data), 0: none "
                        "(default 5)")
    p.add_argument("--data-first-seed", type=int, default=1)
    p.add_argument("--clean-only", action="store_true",
                   help="generate and analyse only the clean variants: false Insights and "
                        "recurring jobs' runs, no recall (half the time of a cold seed)")
    p.add_argument("--quick", action="store_true",
                   help="10 seeds and 3 data-event seeds (overrides --seeds and --data-seeds)")
    p.add_argument("trailsight_args", nargs="*",
                   help="after --: extra `trailsight analyze` flags, e.g. -- --config my.toml")
    a = p.parse_args()
    if a.quick:
        a.seeds, a.data_seeds = 10, 3

    gen, ts = a.bin_dir / "trailsight-gen", a.bin_dir / "trailsight"
    for b in (gen, ts):
        if not b.exists():
            sys.exit(f"eval: {b} not found; run scripts/eval (it builds them)")
    gen_hash, ts_hash = sha256_file(gen), sha256_file(ts)
    tag = a.tag

    labels_all, found_anom, fp_anom, collateral, duplicates = [], 0, [], 0, 0
    tp = 0
    clean_false, clean_keys = [], 0
    runs_analysed, habitual_runs = 0, 0
    seeds = range(a.first_seed, a.first_seed + a.seeds)
    for seed in seeds:
        clean = generate(gen, gen_hash, seed, True, a.root)
        if a.clean_only:
            doc = json.loads((clean / "anomalies.json").read_text())
            labels, found = [], []
        else:
            anomalous = generate(gen, gen_hash, seed, False, a.root)
            doc = json.loads((anomalous / "anomalies.json").read_text())
            labels = [dict(l, seed=seed) for l in doc["anomalies"]]
            found = starts(analyse(ts, ts_hash, anomalous, tag, a.trailsight_args, a.root))
        out_c = analyse(ts, ts_hash, clean, tag, a.trailsight_args, a.root)
        s = score_seed(labels, found, a.floor)
        labels_all += s["labels"]
        tp += s["tp"]
        found_anom += len(found)
        fp_anom += [dict(f, seed=seed) for f in s["fp"]]
        collateral += s["collateral"]
        duplicates += s["duplicates"]
        end = minute(doc["dataEnd"])
        keys = api_keys(clean, end - 7 * 1440, end - 1)
        false = [dict(f, seed=seed) for f in starts(out_c)]
        runs = [r for r in recurring_runs(clean) if end - 7 * 1440 <= r["startMinute"] < end]
        runs_analysed += len(runs)
        habitual_runs += sum(1 for r in runs if r["habitual"])
        for f in false:
            f["run"] = on_run(runs, f)
        clean_false += false
        clean_keys += keys
        hit = sum(1 for l in s["labels"] if l["found"])
        print(f"seed {seed:3}: {hit}/{len(labels)} labels found, {len(s['fp'])} unexplained and "
              f"{s['collateral']} collateral Insights; clean: {len(false)} Insights over {keys} "
              f"API-keys", file=sys.stderr)

    def recall(rows):
        return ratio_text(sum(1 for l in rows if l["found"]), len(rows))

    target = [l for l in labels_all if l["target"]]
    calls_false = sum(1 for f in clean_false if f["insightType"] == "ApiCallRateInsight")
    broad = [l for l in labels_all if l["broad"]]
    timed = [l for l in labels_all if l["found"] and l["scenario"] in SPIKE_SCENARIOS | {"new-api"}]
    errors = [abs(l["error"]) for l in timed]
    target_errors = [abs(l["error"]) for l in target if l["found"]]
    fp_rate = len(clean_false) / clean_keys if clean_keys else math.nan
    on_runs = [f for f in clean_false if f["run"]]
    on_habitual = [f for f in on_runs if f["run"]["habitual"]]
    on_weekly = [f for f in on_runs if f["run"]["schedule"] == "weekly"]
    rows = [
        ("seeds (analysed weeks)", f"{len(seeds)}"),
        ("labelled anomalies", f"{len(labels_all)}"),
        (f"recall, target class (>= {TARGET_RATIO:g}x time-of-day baseline, >= {a.floor:g}/min, "
         f">= {TARGET_MINUTES} min)", recall(target)),
        ("recall, same without requiring a baseline (adds new error codes, new APIs)", recall(broad)),
        ("recall, all labelled anomalies", recall(labels_all)),
        ("precision (anomalous variants; collateral excluded)",
         ratio_text(tp, tp + len(fp_anom))),
        ("collateral Insights (same API and window, other type or code)", f"{collateral}"),
        ("extra Starts on one anomaly (split episodes)", f"{duplicates}"),
        ("false Insights per API-key per week (clean variants)",
         f"{fp_rate:.4f} ({len(clean_false)} / {clean_keys} API-key-weeks)"),
        ("... of which call rate / error rate",
         f"{calls_false} / {len(clean_false) - calls_false}"),
        ("false Insights on recurring jobs' runs (clean variants)",
         f"{len(on_runs)} (over {runs_analysed} runs in the analysed weeks)"),
        (f"... on habitual runs (within +-{HABIT_JITTER_MIN} min of the time of day on >= "
         f"{HABIT_DAYS} of the last {HABIT_LOOKBACK} days, or of last week's run)",
         f"{len(on_habitual)} (over {habitual_runs} habitual runs)"),
        ("... on weekly jobs' runs", f"{len(on_weekly)}"),
        ("false Insights per API-key per week, not on a recurring job's run",
         f"{(len(clean_false) - len(on_runs)) / clean_keys if clean_keys else math.nan:.4f}"),
        ("Start error, target class: median / p95 (absolute minutes)",
         f"{percentile(target_errors, 0.5):.1f} / {percentile(target_errors, 0.95):.1f}"),
        (f"Start within +-{TOLERANCE_MIN} min, target class (of found)",
         ratio_text(sum(1 for e in target_errors if e <= TOLERANCE_MIN), len(target_errors))),
        ("Start error, all found spikes, storms, new APIs: median / p95 (absolute minutes)",
         f"{percentile(errors, 0.5):.1f} / {percentile(errors, 0.95):.1f}"),
        (f"Start within +-{TOLERANCE_MIN} min, all found spikes, storms, new APIs",
         ratio_text(sum(1 for e in errors if e <= TOLERANCE_MIN), len(errors))),
    ]
    for sc in SCENARIO_ORDER:
        group = [l for l in labels_all if l["scenario"] == sc]
        if group:
            extra = ""
            if sc == "ramp":
                delays = [l["error"] for l in group if l["found"]]
                extra = f"; Start {percentile(delays, 0.5):.0f} min after the ramp began (median)"
            rows.append((f"recall, scenario {sc}", recall(group) + extra))
    for cls in ("spike", "error-storm"):
        group = [l for l in target if l["scenario"] == cls]
        rows.append((f"recall, target class, {cls} only", recall(group)))
    for low, high in ((3, 5), (5, 15), (15, 10**9)):
        group = [l for l in target if low <= l["durationMinutes"] < high]
        span = f"{low}-{high - 1} min" if high < 10**9 else f">= {low} min"
        rows.append((f"recall, target class lasting {span}", recall(group)))
    for fl in sorted({1.0, 5.0} - {a.floor}):
        group = [l for l in labels_all if classify(l, fl)["target"]]
        rows.append((f"recall, target class with a floor of {fl:g}/min instead", recall(group)))

    data_labels, data_false = [], []
    if a.data_seeds > 0:
        data_rows, data_labels, data_false = data_event_rows(
            gen, gen_hash, ts, ts_hash, a, range(a.data_first_seed, a.data_first_seed + a.data_seeds))
        rows += data_rows

    width = max(len(r[0]) for r in rows)
    if a.markdown:
        print("| measure | value |\n|---|---|")
        for k, v in rows:
            print(f"| {k} | {v} |")
    else:
        for k, v in rows:
            print(f"{k:<{width}}  {v}")

    if a.verbose:
        print("\nmissed, target class:")
        for l in target:
            if not l["found"]:
                print(f"  seed {l['seed']} {l['id']}: {l['account']} {l['region']} "
                      f"{l['eventName']} {l.get('errorCode') or ''} {l['start']} "
                      f"{l['durationMinutes']} min, {l['injectedPerMinute']}/min vs "
                      f"{l['tod']:.4f}/min time-of-day ({l['baselineCount']} calls in 7 days)")
                if l["earlier"]:
                    print(f"      an Insight of the same series started earlier: "
                          f"{describe(l['earlier'])}")
        print("\nfound outside +-2 min, target class:")
        for l in target:
            if l["found"] and abs(l["error"]) > TOLERANCE_MIN:
                print(f"  seed {l['seed']} {l['id']}: {l['eventName']} {l['start']} "
                      f"{l['durationMinutes']} min {l['injectedPerMinute']}/min: "
                      f"{l['error']:+d} min; {describe(l['found'])}")
        print("\nmissed, other:")
        for l in labels_all:
            if not l["found"] and not l["target"]:
                print(f"  seed {l['seed']} {l['id']}: {l['eventName']} "
                      f"{l.get('errorCode') or ''} {l['durationMinutes']} min, "
                      f"{l['injectedPerMinute']}/min vs {l['tod']:.4f}/min "
                      f"(baseline {l['baselineCount']})")
        by_api: dict = {}
        for f in clean_false:
            k = (f["eventName"], f.get("errorCode") or "")
            by_api[k] = by_api.get(k, 0) + 1
        print("\nfalse Insights, clean variants, by API:")
        for (name, code), n in sorted(by_api.items(), key=lambda kv: -kv[1]):
            print(f"  {n:4}  {name} {code}")
        print("\nfalse Insights, clean variants:")
        for f in clean_false:
            run = f["run"]
            job = (f" [recurring {run['job']}{', habitual' if run['habitual'] else ''}]"
                   if run else "")
            print(f"  seed {f['seed']} {describe(f)}{job}")
        print("\nunexplained Insights, anomalous variants:")
        for f in fp_anom:
            print(f"  seed {f['seed']} {describe(f)}")
        print("\ndata events, missed or late (> 2 min) or error streams not one Insight:")
        for l in data_labels:
            if not l["found"] or abs(l["error"]) > TOLERANCE_MIN or (
                    l["scenario"] == "error-stream" and l["insights"] != 1):
                print(f"  seed {l['seed']} {l['id']} {l['eventName']} {l['start']} "
                      f"{l['durationMinutes']} min ratio {l['ratio']}: "
                      f"{describe(l['found']) if l['found'] else 'missed'}; "
                      f"{l['insights']} Insight(s)")
        print("\ndata events, false Insights (clean variants):")
        for f in data_false:
            batch = (f" [nightly batch{', habitual' if f['run']['habitual'] else ''}]"
                     if f.get("run") else "")
            print(f"  seed {f['seed']} {describe(f)}{batch}")

    if a.json:
        def clean_row(l):
            return {k: (None if isinstance(v, float) and math.isinf(v) else v)
                    for k, v in l.items() if k != "found"} | {
                "foundAt": l["found"]["eventTime"] if l["found"] else None}
        a.json.write_text(json.dumps({
            "table": dict(rows),
            "labels": [clean_row(l) for l in labels_all],
            "cleanFalseInsights": [{k: v for k, v in f.items()} for f in clean_false],
            "unexplainedInsights": fp_anom,
            "dataEventLabels": [clean_row(l) for l in data_labels],
            "dataEventFalseInsights": data_false,
        }, indent=1, default=str))


if __name__ == "__main__":
    main()
