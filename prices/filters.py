from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from prices.models import Card, Prediction


class CardFilter(django_filters.FilterSet):
    set = django_filters.CharFilter(field_name="set_code", lookup_expr="iexact", label="set code")
    category = django_filters.ChoiceFilter(choices=Card.Category.choices)
    signal = django_filters.ChoiceFilter(choices=Prediction.Signal.choices, field_name="signal")
    search = django_filters.CharFilter(method="filter_search", label="name, id or number")

    class Meta:
        model = Card
        fields = ["set", "category", "signal", "search"]

    def filter_search(self, queryset: QuerySet[Card], name: str, value: str) -> QuerySet[Card]:
        return queryset.filter(
            Q(name__icontains=value) | Q(card_id__icontains=value) | Q(number__iexact=value)
        )
