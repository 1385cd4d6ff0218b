from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone

from prices import charts, selectors
from prices.models import Card, CollectionRun, IngestedDay, PricePoint, SignalRecord


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = (
        "card_id",
        "name",
        "set_code",
        "number",
        "category",
        "language",
        "active",
        "latest_price",
        "latest_date",
    )
    list_filter = ("active", "category", "language", "set_code")
    search_fields = ("card_id", "name", "set_name", "number")
    readonly_fields = ("created_at", "updated_at")
    list_per_page = 50
    # The change form shows the card's chart (templates/admin/prices/card/change_form.html).

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/chart.svg",
                self.admin_site.admin_view(self.chart),
                name="prices_card_chart",
            ),
            *super().get_urls(),
        ]

    def chart(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Market price, fair value and band, and the served signals, as an SVG image."""
        card = self.get_object(request, object_id)
        if card is None or not self.has_view_permission(request, card):
            raise Http404("No such card.")
        days = request.GET.get("days", "")
        start = timezone.localdate() - timedelta(days=int(days)) if days.isdigit() else None
        response = HttpResponse(
            charts.render_svg(charts.chart_data(card, start)), content_type="image/svg+xml"
        )
        response["Cache-Control"] = "private, max-age=60"
        return response

    def get_queryset(self, request: HttpRequest) -> QuerySet[Card]:
        latest = PricePoint.objects.filter(card=OuterRef("pk")).order_by("-date")
        return (
            super()
            .get_queryset(request)
            .annotate(
                latest_price_value=Subquery(latest.values("market_price")[:1]),
                latest_date_value=Subquery(latest.values("date")[:1]),
            )
        )

    @admin.display(description="latest price", ordering="latest_price_value")
    def latest_price(self, obj: Card) -> str:
        value = getattr(obj, "latest_price_value", None)
        return "—" if value is None else f"{value:,.2f}"

    @admin.display(description="as of", ordering="latest_date_value")
    def latest_date(self, obj: Card) -> object:
        return getattr(obj, "latest_date_value", None) or "—"


@admin.register(PricePoint)
class PricePointAdmin(admin.ModelAdmin):
    list_display = ("card", "date", "market_price", "currency", "source")
    list_filter = ("source", "currency", ("date", admin.DateFieldListFilter))
    search_fields = ("card__card_id", "card__name")
    date_hierarchy = "date"
    list_select_related = ("card",)
    raw_id_fields = ("card",)
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is slow
    list_per_page = 100


@admin.register(SignalRecord)
class SignalRecordAdmin(admin.ModelAdmin):
    """The track record: every served signal and, once its horizon passed, its outcome."""

    list_display = (
        "date",
        "card",
        "signal",
        "market_price",
        "fair_price",
        "fair_low",
        "fair_high",
        "realised_median",
        "realised_return_pct",
        "outcome",
        "model_version",
    )
    list_filter = ("signal", "signal_rule", "horizon", ("graded_at", admin.EmptyFieldListFilter))
    search_fields = ("card__card_id", "card__name")
    date_hierarchy = "date"
    list_select_related = ("card", "model_version")
    raw_id_fields = ("card",)
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = [f.name for f in SignalRecord._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # records are written by publishing and scoring only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # what was served stays served; old records expire with the window

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied  # before the summaries are computed
        # Periods end at the newest record: if collection stalls, they still show something.
        end = selectors.latest_record_date() or timezone.localdate()
        periods = [
            ("30 days", end - timedelta(days=30)),
            ("90 days", end - timedelta(days=90)),
            ("whole window", None),
        ]
        summaries = [(label, selectors.track_record(start, end)) for label, start in periods]
        return super().changelist_view(
            request, {**(extra_context or {}), "summaries": summaries, "title": "Track record"}
        )

    @admin.display(description="realised return")
    def realised_return_pct(self, obj: SignalRecord) -> str:
        return "—" if obj.realised_return is None else f"{obj.realised_return * 100:+.1f} %"

    @admin.display(description="outcome")
    def outcome(self, obj: SignalRecord) -> str:
        if obj.signal == "HOLD":
            return "—"
        return charts.outcome(obj)


@admin.register(CollectionRun)
class CollectionRunAdmin(admin.ModelAdmin):
    """Every price collection (command, schedule) and its outcome, days and errors."""

    list_display = (
        "id",
        "source",
        "trigger",
        "status",
        "started_at",
        "first_day",
        "last_day",
        "days_ingested",
        "days_skipped",
        "days_missing",
        "days_failed",
        "rows",
        "cards_created",
    )
    list_filter = ("source", "status", "trigger")
    readonly_fields = [f.name for f in CollectionRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IngestedDay)
class IngestedDayAdmin(admin.ModelAdmin):
    """The days a day-by-day source has ingested (a backfill skips them unless forced)."""

    list_display = ("date", "source", "rows", "unpriced", "cards_created", "seconds", "ingested_at")
    list_filter = ("source",)
    date_hierarchy = "date"
    readonly_fields = [f.name for f in IngestedDay._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
