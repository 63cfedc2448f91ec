"""Run schemas/athena-example-queries.sql with DuckDB on a trailsight Parquet tree.

Usage: python3 duckdb_queries.py OUT_DIR QUERIES_SQL
Prints one JSON object: {"query name": {"columns": [...], "rows": [[...], ...]}, ...,
"_table": the row count, "_partitions": every row's partition values and times}. Called by tests/it/parquet_output.rs; DuckDB is installed by scripts/test.

The table is a view over read_parquet(..., hive_partitioning = true) with the partition
columns typed as strings, as Athena declares them. The queries run as written in Athena's SQL
except for one rewrite: Athena unnests an array of structs into one column per field
(`CROSS JOIN UNNEST(list) AS t(a, b)`), DuckDB into one struct column, so each such UNNEST
becomes a lateral `(SELECT UNNEST(list, max_depth := 2)) AS t(a, b)`.
"""

import datetime
import json
import re
import sys

try:
    import duckdb
except ImportError:
    sys.exit(
        "python3 cannot import duckdb: run scripts/test, which installs the test tools "
        "listed in scripts/test-requirements.txt (or pip install -r scripts/test-requirements.txt)"
    )

UNNEST = re.compile(r"UNNEST\(([\w.]+)\)\s+AS\s+(\w+)\s*\(([\w\s,]+)\)", re.IGNORECASE)


def to_duckdb(sql):
    return UNNEST.sub(r"LATERAL (SELECT UNNEST(\1, max_depth := 2)) AS \2(\3)", sql)


def named_queries(text):
    """Split the file at `-- name: NAME` lines; each query runs to its closing semicolon."""
    queries = {}
    for block in re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]:
        name, _, body = block.partition("\n")
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        sql = "\n".join(lines).split(";")[0]
        queries[name.strip()] = sql.strip()
    return queries


def plain(value):
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def main(out_dir, queries_file):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""CREATE VIEW trailsight_insights AS
            SELECT * FROM read_parquet('{out_dir}/insights/**/*.parquet',
                hive_partitioning = true,
                hive_types = {{'account': VARCHAR, 'region': VARCHAR, 'date': VARCHAR}})"""
    )
    results = {"_table": con.execute("SELECT count(*) FROM trailsight_insights").fetchone()[0]}
    # Every row's partition values (from the paths) beside its own columns.
    partitions = con.execute(
        """SELECT account, region, "date", eventname, state, eventtime, eventtime_iso
           FROM trailsight_insights ORDER BY eventtime, eventname, state DESC"""
    )
    results["_partitions"] = {"rows": [[plain(v) for v in r] for r in partitions.fetchall()]}
    with open(queries_file) as f:
        queries = named_queries(f.read())
    if not queries:
        sys.exit(f"{queries_file}: no '-- name:' queries found")
    for name, sql in queries.items():
        try:
            cursor = con.execute(to_duckdb(sql))
        except duckdb.Error as e:
            sys.exit(f"query {name} failed in DuckDB: {e}\n{to_duckdb(sql)}")
        columns = [d[0] for d in cursor.description]
        rows = [[plain(v) for v in row] for row in cursor.fetchall()]
        results[name] = {"columns": columns, "rows": rows}
    print(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
