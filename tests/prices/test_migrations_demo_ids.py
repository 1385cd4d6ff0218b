"""Migration prices/0005: the demo's cards move to the tcgcsv id scheme, data kept."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.support.migrations import migrate

BEFORE = [("prices", "0004_card_printing")]
AFTER = [("prices", "0005_demo_cards_to_tcgcsv_ids")]


@pytest.mark.django_db(transaction=True)
def test_demo_cards_are_renamed_in_place_and_keep_their_prices() -> None:
    apps = migrate(BEFORE)
    Card = apps.get_model("prices", "Card")
    PricePoint = apps.get_model("prices", "PricePoint")
    zard = Card.objects.create(card_id="tcgplayer-517045-card", name="Charizard ex")
    box = Card.objects.create(card_id="tcgplayer-536225-sealed", name="Temporal Forces BB")
    other = Card.objects.create(card_id="tcgplayer-999999-card", name="Not a demo product")
    PricePoint.objects.create(
        card=zard, date=date(2026, 1, 1), market_price=Decimal("300"), source="csv"
    )
    try:
        apps = migrate(AFTER)
        Card = apps.get_model("prices", "Card")
        PricePoint = apps.get_model("prices", "PricePoint")
        renamed = Card.objects.get(pk=zard.pk)
        assert (renamed.card_id, renamed.printing) == ("tcgplayer-517045-holofoil", "Holofoil")
        assert Card.objects.get(pk=box.pk).card_id == "tcgplayer-536225-normal"
        assert Card.objects.get(pk=other.pk).card_id == "tcgplayer-999999-card"  # not ours
        assert PricePoint.objects.get().card_id == zard.pk

        apps = migrate(BEFORE)  # and back
        assert apps.get_model("prices", "Card").objects.get(pk=zard.pk).card_id == (
            "tcgplayer-517045-card"
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest schema
