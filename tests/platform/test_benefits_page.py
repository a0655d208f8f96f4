"""The early-purchase benefit page: apply once, quota never oversold, refusals in the person's language."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.platform._person import as_cookie, sign_in

from c2m.platform import BenefitSpec, Settings, create_app

PROJECT = "swap-city-ev"
PAGE = f"/benefits/{PROJECT}"


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=db_url, slot_days_ahead=1,
        benefits=[BenefitSpec(code="coupon", name="2,000-yuan charging coupon", name_zh="2,000 元充电券", quota=2),
                  BenefitSpec(code="waiver", name="Rent waived", name_zh="免租金", quota=5)],
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _signed_in(client: TestClient, contact: str) -> None:
    client.cookies.clear()
    as_cookie(client, sign_in(client, contact))


def test_signed_out_visitors_see_the_quota_and_a_sign_in_link(client: TestClient) -> None:
    page = client.get(f"{PAGE}?lang=en")
    assert page.status_code == 200 and "2,000-yuan charging coupon" in page.text and "2 of 2 left" in page.text
    assert "Sign in to apply" in page.text and 'name="benefit"' not in page.text
    refused = client.post(f"{PAGE}?lang=en", data={"benefit": "coupon"}, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/sign-in?")
    assert client.get(f"/api/v1/projects/{PROJECT}/benefits").json()[0]["granted"] == 0


def test_apply_once_then_the_quota_runs_out(client: TestClient) -> None:
    _signed_in(client, "13800000001")
    done = client.post(f"{PAGE}?lang=en", data={"benefit": "coupon"})
    assert done.status_code == 200 and "Your benefit" in done.text and "1 of 2 left" in done.text
    assert 'name="benefit"' not in done.text  # one benefit per person: no more apply buttons
    again = client.post(f"{PAGE}?lang=zh", data={"benefit": "waiver"})
    assert again.status_code == 409 and "您已领取过早鸟权益，每人限领一项。" in again.text
    _signed_in(client, "13800000002")
    assert client.post(f"{PAGE}?lang=en", data={"benefit": "coupon"}).status_code == 200
    _signed_in(client, "13800000003")
    page = client.get(f"{PAGE}?lang=en")
    assert "0 of 2 left" in page.text and "All of this benefit have been given out." in page.text
    late = client.post(f"{PAGE}?lang=en", data={"benefit": "coupon"})
    assert late.status_code == 409 and "All of this benefit have been given out." in late.text
    granted = {b["code"]: b["granted"] for b in client.get(f"/api/v1/projects/{PROJECT}/benefits").json()}
    assert granted == {"coupon": 2, "waiver": 0}


def test_an_unknown_or_hostile_benefit_code_is_a_clear_error(client: TestClient) -> None:
    _signed_in(client, "13800000004")
    payload = "<script>alert(1)</script>' OR 1=1 --"
    r = client.post(f"{PAGE}?lang=en", data={"benefit": payload})
    assert r.status_code == 404 and "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
    assert client.post(f"{PAGE}?lang=en", data={}).status_code == 422
