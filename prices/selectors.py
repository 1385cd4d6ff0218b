"""Reads behind the API: cards with their latest prediction, prices, predictions, signals,
and the track record of served signals."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol, cast

from django.conf import settings
from django.db.models import Avg, Count, F, Max, Model, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Abs
from django.utils import timezone

from pokewatch_site.errors import InvalidInput, NotFound
from prices.models import Card, Prediction, PricePoint, SignalRecord

#: The columns a prediction payload (``prediction_payload``) is built from.
PAYLOAD_FIELDS = (
    "date",
    "market_price",
    "fair_price",
    "fair_low",
    "fair_high",
    "deviation",
    "signal",
    "model_version__registered_name",
    "model_version__registered_version",
    "model_version__horizon",
    "model_version__signal_rule",
    "model_version_id",
)


class Champion(Protocol):
    """What the read side uses of the champion model version."""

    @property
    def label(self) -> str: ...
    @property
    def horizon(self) -> int: ...
    @property
    def signal_rule(self) -> str: ...


def _model_versions() -> type[Model]:
    """The model versions' model, reached through prices' own foreign key.

    ``Prediction.model_version`` declares the data dependency ("pipelines.ModelVersion");
    the read side follows that relation instead of importing pipelines' code, so prices
    import nothing of pipelines and the apps have no import cycle.
    """
    return cast(type[Model], Prediction._meta.get_field("model_version").related_model)


def champion() -> Champion | None:
    found = _model_versions()._default_manager.filter(is_champion=True).first()
    return cast(Champion | None, found)


def champion_predictions() -> QuerySet[Prediction]:
    return Prediction.objects.filter(model_version__is_champion=True)


def cards_with_latest() -> QuerySet[Card]:
    """Active cards annotated with their latest price and the champion's latest prediction."""
    latest_price = PricePoint.objects.filter(card=OuterRef("pk")).order_by("-date")
    latest_prediction = champion_predictions().filter(card=OuterRef("pk")).order_by("-date")
    return Card.objects.filter(active=True).annotate(
        latest_market_price=Subquery(latest_price.values("market_price")[:1]),
        prediction_date=Subquery(latest_prediction.values("date")[:1]),
        fair_price=Subquery(latest_prediction.values("fair_price")[:1]),
        fair_low=Subquery(latest_prediction.values("fair_low")[:1]),
        fair_high=Subquery(latest_prediction.values("fair_high")[:1]),
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
        "fair_low": _money(row["fair_low"]),
        "fair_high": _money(row["fair_high"]),
        "deviation_pct": round(float(row["deviation"]) * 100, 2),
        "signal": row["signal"],
        "signal_rule": row["model_version__signal_rule"],
        "horizon_days": row["model_version__horizon"],
        "model_version": f"{row['model_version__registered_name']}/{version}",
    }


def latest_prediction_date() -> date | None:
    return champion_predictions().aggregate(latest=Max("date"))["latest"]


#: The default day of ``signals/`` covers at least this share of the cards scored on the
#: best-covered day of the ``SIGNALS_COVERAGE_DAYS`` days before the latest prediction.
SIGNALS_MIN_COVERAGE = 0.5
SIGNALS_COVERAGE_DAYS = 30


def default_signals_day() -> date | None:
    """The latest day on which the champion scored the tracked cards.

    That is the latest day with predictions for at least ``SIGNALS_MIN_COVERAGE`` of the
    cards of the best-covered day among the last ``SIGNALS_COVERAGE_DAYS``: a day on which
    only a few cards have a price yet (one row imported early, a collection still running)
    is not the day's list of every card.
    """
    latest = latest_prediction_date()
    if latest is None:
        return None
    counts = dict(
        champion_predictions()
        .filter(card__active=True, date__gte=latest - timedelta(days=SIGNALS_COVERAGE_DAYS))
        .values("date")
        .annotate(cards=Count("pk"))
        .values_list("date", "cards")
    )
    if not counts:
        return latest
    most = max(counts.values())
    return max(day for day, cards in counts.items() if cards >= most * SIGNALS_MIN_COVERAGE)


def signals(day: date | None = None, signal: str | None = None) -> tuple[date | None, list[dict]]:
    """The champion's predictions of a day (by default :func:`default_signals_day`),
    largest absolute deviations first."""
    day = day or default_signals_day()
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


# --- the track record (DESIGN.md section 4) ---------------------------------------------


def track_record_horizon() -> int:
    """The horizon the track record reports: the champion's, else the configured one."""
    found = champion()
    return found.horizon if found else int(settings.POKEWATCH_HORIZON_DAYS)


def latest_record_date() -> date | None:
    """The newest day in the track record."""
    return SignalRecord.objects.aggregate(latest=Max("date"))["latest"]


def track_record_window(start: date | None, end: date | None) -> tuple[date, date]:
    """The requested period, by default the whole track-record window up to today."""
    end = end or timezone.localdate()
    start = start or end - timedelta(days=settings.POKEWATCH_TRACK_RECORD_DAYS)
    if start > end:
        raise InvalidInput("start must not be after end.")
    return start, end


def _side(agg: dict[str, Any], side: str) -> dict[str, Any]:
    n = agg[f"{side}_n"]
    return {
        "n": n,
        "right": agg[f"{side}_right"],
        "precision": _ratio(agg[f"{side}_right"], n),
        "hit_rate": _ratio(agg[f"{side}_hit"], n),
        "mean_return": _rounded(agg[f"{side}_mean"]),
    }


def track_record(
    start: date | None = None, end: date | None = None, card_obj: Card | None = None
) -> dict[str, Any]:
    """Graded served signals between ``start`` and ``end`` (inclusive), of one card or all.

    For BUY and for SELL: how many were graded, how many were right (the realised median
    was as far from the market as the thresholds say), precision, hit rate (it moved the
    signalled way) and mean realised return; ``base``: the same events over every graded
    card-day, signalled or not. ``pending`` counts the BUY/SELL signals of the period
    whose horizon has not passed yet.
    """
    start, end = track_record_window(start, end)
    horizon = track_record_horizon()
    records = SignalRecord.objects.filter(horizon=horizon, date__gte=start, date__lte=end)
    if card_obj is not None:
        records = records.filter(card=card_obj)
    else:
        records = records.filter(card__active=True)
    buy, sell = Q(signal=Prediction.Signal.BUY), Q(signal=Prediction.Signal.SELL)
    up, down = Q(realised_return__gt=0), Q(realised_return__lt=0)
    agg = records.filter(realised_return__isnull=False).aggregate(
        n=Count("pk"),
        rose_n=Count("pk", filter=Q(rose=True)),
        fell_n=Count("pk", filter=Q(fell=True)),
        up_n=Count("pk", filter=up),
        mean=Avg("realised_return"),
        buy_n=Count("pk", filter=buy),
        buy_right=Count("pk", filter=buy & Q(rose=True)),
        buy_hit=Count("pk", filter=buy & up),
        buy_mean=Avg("realised_return", filter=buy),
        sell_n=Count("pk", filter=sell),
        sell_right=Count("pk", filter=sell & Q(fell=True)),
        sell_hit=Count("pk", filter=sell & down),
        sell_mean=Avg("realised_return", filter=sell),
    )
    pending = records.filter(graded_at__isnull=True).filter(buy | sell).count()
    return {
        "horizon_days": horizon,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "buy": _side(agg, "buy"),
        "sell": _side(agg, "sell"),
        "base": {
            "n": agg["n"],
            "buy_rate": _ratio(agg["rose_n"], agg["n"]),
            "sell_rate": _ratio(agg["fell_n"], agg["n"]),
            "up_rate": _ratio(agg["up_n"], agg["n"]),
            "mean_return": _rounded(agg["mean"]),
        },
        "pending": pending,
    }


def graded_signals(card_obj: Card, start: date, end: date) -> list[dict[str, Any]]:
    """One card's served BUY/SELL signals in the period, oldest first, with their outcome."""
    rows = (
        SignalRecord.objects.filter(
            card=card_obj, date__gte=start, date__lte=end, horizon=track_record_horizon()
        )
        .exclude(signal=Prediction.Signal.HOLD)
        .select_related("model_version")
        .order_by("date")
    )
    return [
        {
            "date": r.date.isoformat(),
            "signal": r.signal,
            "signal_rule": r.signal_rule,
            "market_price": _money(r.market_price),
            "fair_price": _money(r.fair_price),
            "fair_low": _money(r.fair_low),
            "fair_high": _money(r.fair_high),
            "model_version": r.model_version.label if r.model_version else None,
            "graded": r.graded_at is not None and r.realised_return is not None,
            "realised_median": _money(r.realised_median),
            "realised_return": _rounded(r.realised_return),
            "right": r.right,
            "hit": r.hit,
        }
        for r in rows
    ]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
