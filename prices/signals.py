"""Django signals sent by the prices app (not to be confused with the BUY/SELL signals of
the predictions).

``prices_ingested`` announces that new prices are in the database, so that whoever serves
predictions can give them theirs: the ``pipelines`` app connects its scorer in
``PipelinesConfig.ready``. Prices know nothing of models; the model side listens.
"""

from __future__ import annotations

from django.dispatch import Signal

#: Sent (``sender=PricePoint``) once an import or a collection has committed prices, with
#: ``first_date``: the earliest day among them, whether created, updated (a corrected price)
#: or unchanged, so that a receiver can replace what it derived from an older price. A
#: receiver returns how many predictions it added, or None when it added none (no champion
#: model yet); see :func:`prices.ingestion.score_from`, which sends it.
prices_ingested = Signal()
