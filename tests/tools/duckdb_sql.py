"""Run SQL with DuckDB and print its rows as JSON.

Usage: python3 duckdb_sql.py SQL
Prints {"columns": [...], "rows": [[...], ...]}. Called by tests/it/activities.rs to run the
README's query over the activities files; DuckDB is installed by scripts/test.
"""

import json
import sys

try:
    import duckdb
except ImportError:
    sys.exit(
        "python3 cannot import duckdb: run scripts/test, which installs the test tools "
        "listed in scripts/test-requirements.txt (or pip install -r scripts/test-requirements.txt)"
    )


def main(sql):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        cursor = con.execute(sql)
    except duckdb.Error as e:
        sys.exit(f"query failed in DuckDB: {e}\n{sql}")
    columns = [d[0] for d in cursor.description]
    rows = [list(row) for row in cursor.fetchall()]
    # Timestamps (read_json_auto types ISO times as TIMESTAMP) as text.
    print(json.dumps({"columns": columns, "rows": rows}, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:])
