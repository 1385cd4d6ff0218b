"""The admin's card chart and its track-record page."""

from __future__ import annotations

import re
from datetime import date

from django.test import Client
from django.urls import reverse

from prices import charts
from prices.models import SignalRecord
from tests.support.api import World

MEW = "sv2a-151-mew-ex-205"


def test_card_page_embeds_its_chart(admin_client: Client, world: World) -> None:
    mew = world.cards[0]
    page = admin_client.get(reverse("admin:prices_card_change", args=[mew.pk]))
    chart_url = reverse("admin:prices_card_chart", args=[mew.pk])
    assert page.status_code == 200
    assert f'src="{chart_url}"' in page.text
    assert "served signals" in page.text


def test_chart_is_an_svg_of_price_fair_value_band_and_served_signals(
    admin_client: Client,
    graded: World,
) -> None:
    mew = graded.cards[0]
    response = admin_client.get(reverse("admin:prices_card_chart", args=[mew.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    svg = response.content.decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for label in ("market price", "fair value", "band", "served signal: right"):
        assert label in svg, label
    assert "30-day fair value" in svg


def test_chart_data_colours_served_signals_by_outcome(graded: World) -> None:
    data = charts.chart_data(graded.cards[0], start=date(2026, 3, 1))
    # mew: BUY +20 % (right), BUY +5 % (hit), BUY pending; then the fixture's May BUY
    outcomes = [(str(day), signal, result) for day, signal, _, result in data.signals]
    assert outcomes[:3] == [
        ("2026-03-01", "BUY", "right"),
        ("2026-03-02", "BUY", "hit"),
        ("2026-03-03", "BUY", "pending"),
    ]
    assert [p[0] for p in data.predictions] == sorted(p[0] for p in data.predictions)
    assert all(low <= fair <= high for _, fair, low, high in data.predictions)  # type: ignore[operator]
    assert data.horizon == 30 and data.rule == "band"


def test_chart_needs_staff_and_a_real_card(admin_client: Client, world: World) -> None:
    url = reverse("admin:prices_card_chart", args=[world.cards[0].pk])
    assert Client().get(url).status_code == 302  # to the admin login
    assert admin_client.get(reverse("admin:prices_card_chart", args=[999_999])).status_code == 404


def test_track_record_page_summarises_and_lists(
    admin_client: Client,
    graded: World,
) -> None:
    response = admin_client.get(reverse("admin:prices_signalrecord_changelist"))
    assert response.status_code == 200
    text = response.text
    assert "Track record" in text and "Graded served signals (horizon 30 days)" in text
    assert "whole window" in text and "30 days" in text
    # The periods end at the newest record (2026-05-10 here), not today.
    assert "2026-04-10 … 2026-05-10" in text
    assert re.search(r"<td>BUY</td><td>\d+</td>", text)
    assert SignalRecord.objects.count() > 0
    assert "+20.0 %" in text  # a realised return in the list
    assert admin_client.get(reverse("admin:prices_signalrecord_add")).status_code == 403
    record = SignalRecord.objects.first()
    assert record is not None
    delete = reverse("admin:prices_signalrecord_delete", args=[record.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert SignalRecord.objects.filter(pk=record.pk).exists()
