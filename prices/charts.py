"""A card's chart for the admin: market price, the champion's fair value and band, and the
signals that were served, coloured by how they turned out. Rendered server-side as SVG
with matplotlib (nothing is loaded from a CDN)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Avg

from prices.models import Card, Prediction, PricePoint, SignalRecord

#: Marker colours by outcome of a served signal.
OUTCOME_COLOURS = {
    "right": "#1e8449",  # the realised median went as far as the threshold
    "hit": "#b7950b",  # it moved the signalled way, not that far
    "wrong": "#c0392b",  # it moved the other way
    "pending": "#7f8c8d",  # the horizon has not passed (or too few prices to judge)
}


@dataclass
class ChartData:
    card: Card
    prices: list[tuple[date, float]]
    predictions: list[tuple[date, float, float | None, float | None]]  # fair, low, high
    signals: list[tuple[date, str, float, str]]  # date, BUY/SELL, market, outcome
    horizon: int | None
    rule: str | None


def outcome(record: SignalRecord) -> str:
    if record.realised_return is None:
        return "pending"
    if record.right:
        return "right"
    return "hit" if record.hit else "wrong"


def chart_data(card: Card, start: date | None = None) -> ChartData:
    """What the chart shows, from the champion's predictions and the track record."""
    predictions = Prediction.objects.filter(card=card, model_version__is_champion=True)
    if start is not None:
        predictions = predictions.filter(date__gte=start)
    rows = list(
        predictions.order_by("date").values_list(
            "date",
            "fair_price",
            "fair_low",
            "fair_high",
            "model_version__horizon",
            "model_version__signal_rule",
        )
    )
    first = start or (rows[0][0] if rows else None)
    prices = PricePoint.objects.filter(card=card)
    if first is not None:
        prices = prices.filter(date__gte=first)
    daily = prices.values("date").annotate(price=Avg("market_price")).order_by("date")
    records = SignalRecord.objects.filter(card=card).exclude(signal=Prediction.Signal.HOLD)
    if first is not None:
        records = records.filter(date__gte=first)
    return ChartData(
        card=card,
        prices=[(r["date"], float(r["price"])) for r in daily],
        predictions=[
            (d, float(fair), _float(low), _float(high)) for d, fair, low, high, _, _ in rows
        ],
        signals=[
            (r.date, r.signal, float(r.market_price), outcome(r)) for r in records.order_by("date")
        ],
        horizon=rows[-1][4] if rows else None,
        rule=rows[-1][5] if rows else None,
    )


def render_svg(data: ChartData) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(11, 4.4))
    try:
        _draw(ax, data, Line2D)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def _draw(ax: Any, data: ChartData, line: Any) -> None:
    if data.predictions:
        days = [p[0] for p in data.predictions]
        banded = [p for p in data.predictions if p[2] is not None and p[3] is not None]
        if banded:
            ax.fill_between(
                [p[0] for p in banded],
                [p[2] for p in banded],
                [p[3] for p in banded],
                color="#5dade2",
                alpha=0.25,
                linewidth=0,
                label="band (10th to 90th percentile)",
            )
        ax.plot(
            days,
            [p[1] for p in data.predictions],
            color="#2471a3",
            linewidth=1.4,
            label="fair value (current champion)",
        )
    if data.prices:
        ax.plot(
            [p[0] for p in data.prices],
            [p[1] for p in data.prices],
            color="#17202a",
            linewidth=1.1,
            label="market price",
        )
    for when, signal, market, result in data.signals:
        ax.scatter(
            [when],
            [market],
            marker="^" if signal == "BUY" else "v",
            s=70,
            zorder=5,
            color=OUTCOME_COLOURS[result],
            edgecolors="white",
            linewidths=0.6,
        )
    legend = ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.add_artist(legend)
    if data.signals:
        handles = [
            line([], [], marker="^", linestyle="", color=colour, label=f"served signal: {name}")
            for name, colour in OUTCOME_COLOURS.items()
        ]
        ax.legend(
            handles=handles,
            loc="lower right",
            fontsize=8,
            frameon=False,
            title="▲ BUY  ▼ SELL",
            title_fontsize=8,
        )
    horizon = f"{data.horizon}-day fair value" if data.horizon else "no predictions yet"
    rule = f", rule '{data.rule}'" if data.rule else ""
    ax.set_title(f"{data.card.name} ({data.card.card_id}): {horizon}{rule}", fontsize=10)
    ax.set_ylabel("USD")
    ax.grid(alpha=0.25)
    ax.figure.autofmt_xdate()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
