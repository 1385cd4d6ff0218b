from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from prices.models import Card, PricePoint


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
