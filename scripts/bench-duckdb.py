#!/usr/bin/env python3
"""DuckDB's side of scripts/bench: read_json_auto over the CloudTrail objects of DIR, UNNEST the
Records, and count write management events per account, region, eventSource, eventName and
minute (Unix minutes), the counts trailsight's call-rate series are built from.

    bench-duckdb.py DIR [--threads N] [--csv OUT]

Prints `rows total_events` on stdout; with --csv also writes the grouped counts (sorted) for
the per-key comparison with trailsight's own decoder (`bench counts`).
"""
import argparse
import csv
import sys

import duckdb

QUERY = """
WITH records AS (
    SELECT UNNEST(Records) AS r
    FROM read_json_auto(?, maximum_object_size = 268435456)
)
SELECT r.recipientAccountId AS account,
       r.awsRegion AS region,
       r.eventSource AS event_source,
       r.eventName AS event_name,
       CAST(floor(epoch(CAST(r.eventTime AS TIMESTAMP)) / 60) AS BIGINT) AS minute,
       count(*) AS count
FROM records
WHERE CAST(r.readOnly AS VARCHAR) = 'false'
  AND coalesce(CAST(r.managementEvent AS VARCHAR), 'true') = 'true'
  AND coalesce(r.eventType, '') <> 'AwsCloudTrailInsight'
GROUP BY ALL
ORDER BY ALL
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--csv")
    args = parser.parse_args()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    pattern = f"{args.dir.rstrip('/')}/AWSLogs/*/*/CloudTrail/*/*/*/*/*.json.gz"
    rows = con.execute(QUERY, [pattern]).fetchall()
    total = sum(row[-1] for row in rows)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            out = csv.writer(f, lineterminator="\n")
            out.writerow(["account", "region", "event_source", "event_name", "minute", "count"])
            out.writerows(rows)
    print(len(rows), total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
