"""The pre-order flow in a real browser (Playwright, Debian's chromium, phone viewport) against `c2m serve`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.pool import NullPool
from tests.platform.test_browser import server, sign_in_in_the_browser  # noqa: F401 - the `c2m serve` fixture

from c2m.platform import make_engine
from c2m.platform._models import PaymentRow, PreorderRow

PROJECT = "swap-city-ev"


def test_choose_options_pay_and_see_the_confirmation(server: str, db_url: str, page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page.goto(f"{server}/preorder/{PROJECT}?lang=en")
    sign_in_in_the_browser(page, db_url, "+86 138 0000 0001")  # the form needs a signed-in person
    assert page.get_by_role("heading", name="Pre-order your car").is_visible()
    page.get_by_label("Version and price").select_option("p75k")
    page.get_by_label("Colour").select_option("green")
    page.get_by_label("Battery", exact=True).select_option("ncm52")
    page.get_by_label("Buy or rent the battery").select_option("rent:unlimited")
    page.get_by_role("button", name="Reserve and continue to payment").click()

    page.wait_for_url("**/orders/**")
    assert page.get_by_role("heading", name="Pay the deposit").is_visible()
    order_id = page.locator("dd code").inner_text().strip()
    page.get_by_role("button", name="Pay the deposit of 2,000 yuan").click()

    assert page.get_by_role("heading", name="Your pre-order is confirmed").is_visible()
    engine = make_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            order = conn.execute(select(PreorderRow).where(PreorderRow.id == order_id)).one()
            payments = conn.execute(select(PaymentRow.kind).where(PaymentRow.order_id == order_id)).scalars().all()
    finally:
        engine.dispose()
    assert order.state == "deposit_paid" and order.rent_plan == "unlimited" and order.colour == "green"
    assert payments == ["charge"]
    page.get_by_role("link", name="中文").click()
    assert page.get_by_role("heading", name="预订成功").is_visible()
