"""The real stack for tests: PostgreSQL, SeaweedFS (S3) and Elasticsearch, started once a session.

Each test (or module) gets its own database, bucket and index alias, so tests never see each
other's data; the database is copied from a template that was migrated once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from psycopg import sql

from services.db import Database
from tests.servers import ElasticsearchServer, PostgresServer, S3Server

TEMPLATE = "materials_template"


@dataclass(frozen=True)
class RealStack:
    postgres: PostgresServer
    s3: S3Server
    elasticsearch: ElasticsearchServer

    @contextmanager
    def allocate(self) -> Iterator[dict[str, Any]]:
        """Settings of a fresh database, bucket and index alias; the database and indices are
        dropped afterwards (the bucket goes with the server's temporary directory)."""
        name = f"test_{uuid.uuid4().hex}"
        with self.postgres.admin() as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE)
                )
            )
        alias = f"test-{uuid.uuid4().hex[:16]}"
        try:
            yield {
                "database_url": self.postgres.url(name),
                "s3_endpoint": f"http://{self.s3.endpoint}",
                "s3_access_key": self.s3.access_key,
                "s3_secret_key": self.s3.secret_key,
                "s3_bucket": f"test-{uuid.uuid4().hex[:20]}",
                # The API suite reads downloads from the response; redirects to the store are
                # tested on their own (tests/contract/test_presigned_download.py).
                "s3_presigned_downloads": False,
                "elasticsearch_url": self.elasticsearch.url,
                "elasticsearch_index": alias,
            }
        finally:
            with Elasticsearch(self.elasticsearch.url) as client:
                names = list(client.indices.get(index=f"{alias}-*").body)
                if names:
                    client.indices.delete(index=names)
            with self.postgres.admin() as admin:
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def real_stack(
    postgres: PostgresServer, seaweedfs: S3Server, elasticsearch: ElasticsearchServer
) -> RealStack:
    with postgres.admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    template = Database(postgres.url(TEMPLATE))
    template.migrate()
    template.dispose()
    return RealStack(postgres, seaweedfs, elasticsearch)
