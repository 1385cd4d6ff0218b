"""Reads behind the API: cards with their latest prediction, prices, predictions, signals."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import F, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import Abs

from pipelines.models import ModelVersion
from prices.errors import NotFound
from prices.models import Card, Prediction, PricePoint

#: The columns a prediction payload (``prediction_payload``) is built from.
PAYLOAD_FIELDS = (
    "date",
    "market_price",
    "fair_price",
    "deviation",
    "signal",
    "model_version__registered_name",
    "model_version__registered_version",
    "model_version_id",
)


def champion() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_champion=True).first()


def champion_predictions() -> QuerySet[Prediction]:
    return Prediction.objects.filter(model_version__is_champion=True)


def cards_with_latest() -> QuerySet[Card]:
    """Active cards annotated with their latest price and the champion's latest prediction."""
    latest_price = PricePoint.objects.filter(card=OuterRef("pk")).order_by("-date")
    latest_prediction = champion_predictions().filter(card=OuterRef("pk")).order_by("-date")
    return Card.objects.filter(active=True).annotate(
        latest_market_price=Subquery(latest_price.values("market_price")[:1]),
        latest_price_date=Subquery(latest_price.values("date")[:1]),
        prediction_date=Subquery(latest_prediction.values("date")[:1]),
        fair_price=Subquery(latest_prediction.values("fair_price")[:1]),
        deviation=Subquery(latest_prediction.values("deviation")[:1]),
        signal=Subquery(latest_prediction.values("signal")[:1]),
    )


def card(card_id: str) -> Card:
    found = Card.objects.filter(card_id=card_id, active=True).first()
    if found is None:
        raise NotFound(f"Unknown card {card_id!r}.")
    return found


def price_history(
    card_obj: Card, start: date | None = None, end: date | None = None
) -> QuerySet[PricePoint]:
    queryset = PricePoint.objects.filter(card=card_obj).order_by("date", "source")
    if start:
        queryset = queryset.filter(date__gte=start)
    if end:
        queryset = queryset.filter(date__lte=end)
    return queryset


def fair_price(card_id: str, day: date | None = None) -> dict[str, Any]:
    """The champion's prediction of ``card_id`` on ``day`` (its latest one if no day)."""
    queryset = champion_predictions().filter(card__card_id=card_id, card__active=True)
    if day is not None:
        queryset = queryset.filter(date=day)
    row = queryset.order_by("-date").values(*PAYLOAD_FIELDS).first()
    if row is None:
        if not Card.objects.filter(card_id=card_id, active=True).exists():
            raise NotFound(f"Unknown card {card_id!r}.")
        when = f"on {day.isoformat()}" if day else "yet"
        raise NotFound(f"No fair price for {card_id!r} {when}.")
    return prediction_payload(card_id, row)


def prediction_payload(card_id: str, row: Mapping[str, Any]) -> dict[str, Any]:
    version = row["model_version__registered_version"] or row["model_version_id"]
    return {
        "card_id": card_id,
        "date": row["date"].isoformat(),
        "market_price": _money(row["market_price"]),
        "fair_price": _money(row["fair_price"]),
        "deviation_pct": round(float(row["deviation"]) * 100, 2),
        "signal": row["signal"],
        "model_version": f"{row['model_version__registered_name']}/{version}",
    }


def latest_prediction_date() -> date | None:
    return champion_predictions().aggregate(latest=Max("date"))["latest"]


def signals(day: date | None = None, signal: str | None = None) -> tuple[date | None, list[dict]]:
    """The champion's predictions of a day, largest absolute deviations first."""
    day = day or latest_prediction_date()
    if day is None:
        return None, []
    queryset = champion_predictions().filter(date=day, card__active=True)
    if signal:
        queryset = queryset.filter(signal=signal)
    rows = (
        queryset.annotate(card_key=F("card__card_id"), size=Abs("deviation"))
        .order_by("-size", "card_key")
        .values("card_key", *PAYLOAD_FIELDS)
    )
    return day, [prediction_payload(row["card_key"], row) for row in rows]


def _money(value: Decimal | float | None) -> str | None:
    return None if value is None else f"{Decimal(value):.2f}"
