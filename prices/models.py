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
    # TCGplayer prices each printing of a product separately: a card is one (product,
    # printing), e.g. tcgplayer-517045-holofoil (prices.sources.tcgcsv.card_id_for).
    tcgplayer_id = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    printing = models.CharField(
        max_length=40, blank=True, help_text="TCGplayer's subTypeName, e.g. Holofoil, Normal"
    )
    image_url = models.URLField(max_length=300, blank=True)
    url = models.URLField(max_length=300, blank=True, help_text="the product on TCGplayer")
    pricetracker_id = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True, db_index=True)
    # Kept by the ingestion service (the only writer of prices): cards with recent prices
    # list first, without a subquery over millions of prices per listed card (sorting the
    # cards themselves, tens of thousands, takes milliseconds: no index needed).
    latest_price_date = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["card_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tcgplayer_id", "printing"],
                condition=models.Q(tcgplayer_id__isnull=False),
                name="card_unique_tcgplayer_printing",
            )
        ]

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
        # No B-tree on date: it would double the write cost of bulk ingestion (random
        # inserts into a second index). On PostgreSQL, migration 0008 adds a BRIN index
        # on date instead (kB in size, almost free to keep) for "the prices of the last
        # days"; day-wide reads of predictions go through Prediction's own index.

    def __str__(self) -> str:
        return f"{self.card_id} {self.date} {self.market_price} {self.currency} ({self.source})"


class Prediction(models.Model):
    """A champion model's fair value of a card on a day, its band, and the signal."""

    class Signal(models.TextChoices):
        BUY = "BUY"
        HOLD = "HOLD"
        SELL = "SELL"

    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="predictions")
    date = models.DateField()
    market_price = models.DecimalField(max_digits=12, decimal_places=2)
    fair_price = models.DecimalField(max_digits=12, decimal_places=2)
    fair_low = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="10th percentile"
    )
    fair_high = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="90th percentile"
    )
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


class SignalRecord(models.Model):
    """The prediction *served* for a card on a day, and, once its horizon has passed, how
    it turned out: the track record (DESIGN.md section 4).

    One row per (card, date): the first prediction published for that day, copied when
    it is written and never replaced by a later champion's recomputation (that would be
    grading in sample). Only out-of-sample days are recorded: days whose target window
    the publishing model was not trained on.
    """

    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="signal_records")
    date = models.DateField()
    model_version = models.ForeignKey(
        "pipelines.ModelVersion",
        on_delete=models.SET_NULL,
        null=True,
        related_name="signal_records",
    )
    horizon = models.PositiveSmallIntegerField()
    signal_rule = models.CharField(max_length=12)
    signal = models.CharField(max_length=4, choices=Prediction.Signal.choices)
    market_price = models.DecimalField(max_digits=12, decimal_places=2)
    fair_price = models.DecimalField(max_digits=12, decimal_places=2)
    fair_low = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    fair_high = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    buy_threshold = models.FloatField()
    sell_threshold = models.FloatField()
    published_at = models.DateTimeField()
    # Filled in by grading once the card has prices past date + horizon.
    graded_at = models.DateTimeField(null=True, blank=True)
    realised_median = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="median of t+1..t+H"
    )
    realised_return = models.FloatField(null=True, blank=True, help_text="realised / market - 1")
    rose = models.BooleanField(null=True, help_text="a BUY would have been right")
    fell = models.BooleanField(null=True, help_text="a SELL would have been right")

    class Meta:
        ordering = ["card_id", "date"]
        constraints = [
            models.UniqueConstraint(fields=["card", "date"], name="signalrecord_unique_card_date"),
        ]
        indexes = [
            models.Index(fields=["date"], name="signalrecord_date_idx"),
            models.Index(
                fields=["date"],
                condition=models.Q(graded_at__isnull=True),
                name="signalrecord_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.card_id} {self.date} {self.signal}"

    @property
    def right(self) -> bool | None:
        """BUY: rose enough; SELL: fell enough; None for HOLD or ungraded."""
        if self.signal == Prediction.Signal.BUY:
            return self.rose
        if self.signal == Prediction.Signal.SELL:
            return self.fell
        return None

    @property
    def hit(self) -> bool | None:
        """The realised median moved the signalled way (None for HOLD or ungraded)."""
        if self.realised_return is None or self.signal == Prediction.Signal.HOLD:
            return None
        up = self.realised_return > 0
        return up if self.signal == Prediction.Signal.BUY else self.realised_return < 0


class IngestedDay(models.Model):
    """A day a day-by-day source (tcgcsv) has been ingested completely, in the same
    transaction as its prices: a backfill skips these days unless forced."""

    source = models.CharField(max_length=40)
    date = models.DateField()
    rows = models.PositiveIntegerField(default=0, help_text="prices written (created or kept)")
    unpriced = models.PositiveIntegerField(default=0, help_text="rows without a market price")
    cards_created = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    ingested_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "date"], name="ingestedday_unique_source_date"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.date} ({self.rows} prices)"


class SourceFreshness(models.Model):
    """When each source last brought new or changed prices (written by every ingestion, in
    its transaction): the "age of the newest price" that /metrics exports and alerts on."""

    source = models.CharField(max_length=40, unique=True)
    newest_date = models.DateField(help_text="the latest day the source has a price for")
    last_ingested_at = models.DateTimeField(help_text="when it last wrote a new or changed price")

    class Meta:
        ordering = ["source"]
        verbose_name_plural = "source freshness"

    def __str__(self) -> str:
        return (
            f"{self.source}: {self.newest_date} (ingested {self.last_ingested_at:%Y-%m-%d %H:%M})"
        )


class CollectionRun(models.Model):
    """One price collection (a command, the daily schedule, the admin button) and its outcome."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        PARTIAL = "partial", "partial (some days failed or were missing)"
        FAILED = "failed"

    source = models.CharField(max_length=40)
    trigger = models.CharField(max_length=12, default="command")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    first_day = models.DateField(null=True, blank=True)
    last_day = models.DateField(null=True, blank=True)
    days_ingested = models.PositiveIntegerField(default=0)
    days_skipped = models.PositiveIntegerField(default=0, help_text="already ingested")
    days_missing = models.PositiveIntegerField(default=0, help_text="the source had nothing")
    days_failed = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    cards_created = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"collection #{self.pk} {self.source} {self.status}"


class CacheGeneration(models.Model):
    """One row: the prediction cache's generation, bumped in the publishing transaction.

    The database is the source of truth so that every process (web workers, the Celery
    worker) agrees on it even with the per-process local-memory cache.
    """

    value = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The admin's cache page (prices.admin_views): view_cachegeneration shows the
        # statistics, this one clears the cache.
        permissions = [("clear_prediction_cache", "Can clear the prediction cache")]

    def __str__(self) -> str:
        return f"generation {self.value}"
