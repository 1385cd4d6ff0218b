"""What the pipelines app does when the prices app announces something (connected in
``PipelinesConfig.ready``)."""

from __future__ import annotations

from datetime import date
from typing import Any


def score_ingested_prices(sender: Any, first_date: date | None, **kwargs: Any) -> int | None:
    """``prices_ingested``: the champion scores the new prices from ``first_date`` on, and
    predicts again the days whose price was corrected (their old prediction is replaced).

    Its new predictions, or None without a champion; a scoring failure is logged by
    :func:`pipelines.scoring.score_after_ingestion` and never undoes the import.
    """
    # Imported here: scoring loads pandas and the model stack, which the web processes
    # (where this receiver is connected too) do not need until prices arrive.
    from pipelines.scoring import score_after_ingestion

    scored = score_after_ingestion(first_date)
    return scored.scored if scored is not None and scored.champion else None
