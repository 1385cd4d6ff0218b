from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from prices.models import Card, PricePoint


@pytest.fixture
def staff_client(admin_client: Client) -> Client:
    return admin_client


def test_card_changelist_shows_latest_price(staff_client: Client, make_card, make_prices) -> None:
    card = make_card(name="Charizard ex")
    make_prices(card, [10, 11, 12.5])
    response = staff_client.get(reverse("admin:prices_card_changelist"))
    assert response.status_code == 200
    assert "Charizard ex" in response.text
    assert "12.50" in response.text


def test_card_changelist_search_and_filter(staff_client: Client, make_card) -> None:
    make_card(name="Mew ex", category="grail")
    make_card(name="Pikachu", category="chase")
    response = staff_client.get(
        reverse("admin:prices_card_changelist"), {"q": "mew", "category__exact": "grail"}
    )
    assert response.status_code == 200
    assert "Mew ex" in response.text
    assert "Pikachu" not in response.text


def test_card_change_page_loads(staff_client: Client, make_card) -> None:
    card = make_card()
    response = staff_client.get(reverse("admin:prices_card_change", args=[card.pk]))
    assert response.status_code == 200


def test_price_changelist_and_change_page_load(
    staff_client: Client, make_card, make_prices
) -> None:
    card = make_card(card_id="zapdos")
    make_prices(card, [3, 4])
    changelist = staff_client.get(
        reverse("admin:prices_pricepoint_changelist"), {"q": "zapdos", "source": "test"}
    )
    point = PricePoint.objects.first()
    change = staff_client.get(reverse("admin:prices_pricepoint_change", args=[point.pk]))
    assert changelist.status_code == change.status_code == 200
    assert "zapdos" in changelist.text


def test_admin_requires_staff(client: Client, db) -> None:
    response = client.get(reverse("admin:prices_card_changelist"))
    assert response.status_code == 302
    assert Card.objects.count() == 0


def test_training_run_and_model_version_pages_load(staff_client: Client) -> None:
    from pipelines.models import ModelVersion, TrainingRun

    champion = ModelVersion.objects.create(
        registered_name="m", estimator="model", metrics={"mape": 0.02}, is_champion=True
    )
    run = TrainingRun.objects.create(
        status="succeeded",
        step_timings={"load_prices": 0.5},
        metrics={"horizon": 7, "estimators": {"model": {"mape": 0.0123, "coverage": 1.0}}},
        champion_metrics={"mape": 0.02},
        candidate=champion,
        promoted=True,
        reason="model MAPE 0.0123 <= best baseline",
    )
    changelist = staff_client.get(reverse("admin:pipelines_trainingrun_changelist"))
    detail = staff_client.get(reverse("admin:pipelines_trainingrun_change", args=[run.pk]))
    versions = staff_client.get(reverse("admin:pipelines_modelversion_changelist"))
    version = staff_client.get(reverse("admin:pipelines_modelversion_change", args=[champion.pk]))
    assert {changelist.status_code, detail.status_code, versions.status_code} == {200}
    assert version.status_code == 200
    assert "0.0123" in detail.text and "0.0200" in detail.text
    assert "load_prices: 0.50 s" in detail.text


def test_collection_runs_and_ingested_days_are_listed_read_only(staff_client: Client) -> None:
    from prices.models import CollectionRun, IngestedDay

    CollectionRun.objects.create(source="tcgcsv", status="failed", error="tcgcsv: unreachable")
    IngestedDay.objects.create(source="tcgcsv", date="2025-09-21", rows=41569)
    runs = staff_client.get(reverse("admin:prices_collectionrun_changelist"))
    days = staff_client.get(reverse("admin:prices_ingestedday_changelist"))
    assert runs.status_code == 200 and "failed" in runs.text
    assert days.status_code == 200 and "41569" in days.text
    assert staff_client.get(reverse("admin:prices_collectionrun_add")).status_code == 403


def test_if_staff_has_no_permission_then_prices_admin_pages_answer_403(
    permitted_client, make_card
) -> None:
    card = make_card()
    client = permitted_client()
    for url in (
        reverse("admin:prices_card_changelist"),
        reverse("admin:prices_card_change", args=[card.pk]),
        reverse("admin:prices_pricepoint_changelist"),
        reverse("admin:prices_signalrecord_changelist"),
        reverse("admin:prices_collectionrun_changelist"),
    ):
        assert client.get(url).status_code == 403, url
    chart = client.get(reverse("admin:prices_card_chart", args=[card.pk]))
    assert chart.status_code == 404  # the chart says no more than "no such card"


def test_if_staff_may_view_cards_then_pages_load_read_only(permitted_client, make_card) -> None:
    card = make_card(name="Mewtwo")
    client = permitted_client("prices.view_card")
    assert "Mewtwo" in client.get(reverse("admin:prices_card_changelist")).text
    change = client.get(reverse("admin:prices_card_change", args=[card.pk]))
    assert change.status_code == 200 and 'name="name"' not in change.text  # read only
    assert client.get(reverse("admin:prices_card_chart", args=[card.pk])).status_code == 200
    assert client.post(reverse("admin:prices_card_change", args=[card.pk])).status_code == 403
