"""The full load test: 50 users for 5 minutes against the production layout on the real stack.

Run: ``.venv/bin/python -m tests.load.run [--users 50] [--minutes 5] [--max-mb 20]``. Starts
PostgreSQL, SeaweedFS and Elasticsearch in a temporary directory (stopped and removed at the end,
also on error), runs ``tests.load.harness.run_load`` and prints requests/s, the error rate, p50/p95
per operation and the agreement checks; exits 1 when anything failed or disagreed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from services.db import Database
from tests.bench._stack import Stack, machine
from tests.load.harness import run_load

SECRET = "load-test-signing-key-" + "k" * 32


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--max-mb", type=float, default=20.0, help="largest upload, in MiB")
    args = parser.parse_args(argv)
    print(machine(), flush=True)
    with Stack() as stack:
        postgres = stack.postgres()
        s3 = stack.seaweedfs()
        elasticsearch = stack.elasticsearch(heap="1g")
        # deploy/postgres.sh creates the `materials` database.
        database = Database(postgres.url("materials"))
        database.migrate()
        database.dispose()
        values = {
            "secret_key": SECRET,
            "database_url": postgres.url("materials"),
            "s3_endpoint": f"http://{s3.endpoint}",
            "s3_access_key": s3.access_key,
            "s3_secret_key": s3.secret_key,
            "s3_bucket": "materials",
            "elasticsearch_url": elasticsearch.url,
        }
        report = run_load(
            values,
            stack.directory,
            users=args.users,
            seconds=round(args.minutes * 60),
            max_bytes=int(args.max_mb * 1024 * 1024),
            catch_up_timeout=900,
        )
        print(*report.lines(), sep="\n")
        print(f"after the run: {machine()}")
        results = Path(tempfile.mkdtemp(prefix="materials-load-results-"))
        for path in stack.directory.iterdir():
            if path.is_file() and path.suffix in (".log", ".csv", ".json"):
                shutil.copy(path, results)
        print(f"logs and Locust's CSV files kept in {results}")
        if not report.ok:
            for name in ("server.log", "worker-0.log", "worker-1.log", "locust.log"):
                tail = (stack.directory / name).read_text(errors="replace").splitlines()[-30:]
                print(f"--- {name} (last lines)", *tail, sep="\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
