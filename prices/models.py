"""Cards of the tracked universe and their market price history."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class Card(models.Model):
    class Category(models.TextChoices):
        GRAIL = "grail", "Grail"
        CHASE = "chase", "Chase"
        META = "meta", "Meta"
        PERSONAL = "personal", "Personal"
        SEALED = "sealed", "Sealed product"
        OTHER = "other", "Other"

    card_id = models.SlugField(
        max_length=100, unique=True, help_text="Stable public id, e.g. sv2a-151-charizard-ex-201."
    )
    name = models.CharField(max_length=200)
    set_code = models.CharField(max_length=40, blank=True, db_index=True)
    set_name = models.CharField(max_length=200, blank=True)
    number = models.CharField(max_length=20, blank=True)
    rarity = models.CharField(max_length=60, blank=True)
    category = models.CharField(
        max_length=20, choices=Category.choices, default=Category.OTHER, db_index=True
    )
    tags = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=8, default="en")
    tcgplayer_id = models.PositiveIntegerField(null=True, blank=True, unique=True)
    pricetracker_id = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["card_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.card_id})"


class PricePoint(models.Model):
    """One market price of one card on one day, as reported by one source."""

    # No separate index on card: the unique (card, date, source) index leads with it.
    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="prices", db_index=False)
    date = models.DateField()
    market_price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    source = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["card_id", "date"]
        constraints = [
            # Also the index for "history of one card" (card = X AND date BETWEEN ...)
            # and, scanned backwards, for "latest price per card".
            models.UniqueConstraint(
                fields=["card", "date", "source"], name="pricepoint_unique_card_date_source"
            ),
            models.CheckConstraint(
                condition=models.Q(market_price__gt=Decimal("0")),
                name="pricepoint_market_price_positive",
            ),
        ]
        # No separate index on date: it would double the write cost of bulk ingestion
        # (random inserts into a second index), and day-wide reads go through Prediction.

    def __str__(self) -> str:
        return f"{self.card_id} {self.date} {self.market_price} {self.currency} ({self.source})"


class Prediction(models.Model):
    """A champion model's fair value of a card on a day, and the signal it implies."""

    class Signal(models.TextChoices):
        BUY = "BUY"
        HOLD = "HOLD"
        SELL = "SELL"

    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="predictions")
    date = models.DateField()
    market_price = models.DecimalField(max_digits=12, decimal_places=2)
    fair_price = models.DecimalField(max_digits=12, decimal_places=2)
    deviation = models.FloatField(help_text="(market - fair) / fair")
    signal = models.CharField(max_length=4, choices=Signal.choices)
    model_version = models.ForeignKey(
        "pipelines.ModelVersion", on_delete=models.CASCADE, related_name="predictions"
    )

    class Meta:
        ordering = ["card_id", "date"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "card", "date"], name="prediction_unique_version_card_date"
            ),
        ]
        indexes = [
            models.Index(fields=["model_version", "date"], name="prediction_version_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.card_id} {self.date} {self.signal}"


class CacheGeneration(models.Model):
    """One row: the prediction cache's generation, bumped in the publishing transaction.

    The database is the source of truth so that every process (web workers, the Celery
    worker) agrees on it even with the per-process local-memory cache.
    """

    value = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"generation {self.value}"
