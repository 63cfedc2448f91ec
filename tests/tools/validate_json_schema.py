"""Validate Insight records against a JSON Schema (draft 2020-12) with the jsonschema package.

Usage: python3 validate_json_schema.py SCHEMA_JSON < cases.json
where cases.json is a list of {"name": ..., "record": {...}}. Prints one JSON list: for each
case, its name and the validation errors (empty when valid). Called by tests/it/schemas.rs;
jsonschema is installed by scripts/test.
"""

import json
import sys

try:
    import jsonschema
except ImportError:
    sys.exit(
        "python3 cannot import jsonschema: run scripts/test, which installs the test tools "
        "listed in scripts/test-requirements.txt (or pip install -r scripts/test-requirements.txt)"
    )


def main(schema_file):
    with open(schema_file) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    results = []
    for case in json.load(sys.stdin):
        errors = [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(record)'}: {e.message}"
            for e in validator.iter_errors(case["record"])
        ]
        results.append({"name": case["name"], "errors": errors})
    print(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
