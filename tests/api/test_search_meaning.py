"""A clerk's 去年 / 上季度 and a township written with the other of 乡 and 镇, through the API and
the search page: searched as meant, and said so."""

from __future__ import annotations

from typing import Any

from indexer.worker import IndexWorker
from services import catalog, dictionary, orgs
from services.backends import Backends
from services.models import OrgKind
from tests.conftest import Api, signed_in_browser


def _search(api: Api, **params: Any) -> Any:
    response = api.client.get("/api/v1/search", params=params, headers=api.headers("poverty"))
    assert response.status_code == 200, response.text
    return response.json()


def test_last_year_finds_last_years_material_and_says_how_it_read_the_query(
    api: Api, backends: Backends
) -> None:
    year = catalog.county_today().year
    ids = {}
    for period, visits in ((str(year - 1), "走访农户"), (str(year), "入户核查")):
        uploaded = api.upload(
            "east", f"{period}.txt", f"全镇扶贫工作总结，{visits}。".encode(), period=period
        )
        assert uploaded.status_code == 201, uploaded.text
        ids[period] = uploaded.json()["id"]
    IndexWorker(backends, backends.index).drain()

    found = _search(api, q="去年的扶贫工作总结")
    assert [hit["document"]["id"] for hit in found["hits"]] == [ids[str(year - 1)]]
    assert found["readings"] == [{"typed": "去年", "meant": f"{year - 1}年"}]
    this_year = _search(api, q="今年 扶贫")
    assert [hit["document"]["id"] for hit in this_year["hits"]] == [ids[str(year)]]
    plain = _search(api, q="扶贫")
    assert plain["total"] == 2
    assert plain["readings"] == []

    with signed_in_browser(api.client, "poverty") as browser:
        page = browser.get("/search", params={"q": "去年 扶贫"})
    assert page.status_code == 200
    assert f"“去年”按“{year - 1}年”查找" in page.text


def test_a_township_written_with_the_other_suffix_is_searched_as_the_countys_name(
    api: Api, backends: Backends
) -> None:
    with backends.db.session() as session:
        orgs.create_org(session, name="河口乡", kind=OrgKind.township)
    dictionary.refresh(backends)  # as every process does within dictionary_check_seconds

    found = _search(api, q="河口镇 会议纪要")
    assert found["readings"] == [{"typed": "河口镇", "meant": "河口乡"}]
