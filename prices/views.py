"""The read API (DESIGN.md §5). Reads are viewsets; actions are small APIViews."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from django.db.models import F
from django.http import HttpResponseBase
from django.utils.cache import get_conditional_response
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pokewatch_site.api import ERROR
from pokewatch_site.errors import NotFound
from prices import caching, selectors
from prices.filters import CardFilter
from prices.serializers import (
    BatchFairPriceRequestSerializer,
    BatchItemSerializer,
    CardSerializer,
    CardTrackRecordSerializer,
    FairPriceRequestSerializer,
    FairPriceSerializer,
    PricePointSerializer,
    RangeQuerySerializer,
    SignalQuerySerializer,
    TrackRecordSerializer,
    date_param,
)

logger = logging.getLogger(__name__)

ERRORS = {400: ERROR, 401: ERROR, 404: ERROR, 429: ERROR}
DATE_PARAM = OpenApiParameter("date", OpenApiTypes.DATE, description="YYYY-MM-DD")
RANGE_PARAMS = [
    OpenApiParameter("start", OpenApiTypes.DATE, description="YYYY-MM-DD, inclusive"),
    OpenApiParameter("end", OpenApiTypes.DATE, description="YYYY-MM-DD, inclusive"),
]


def _query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _fair_price_parts(card_id: str, day: date | None) -> tuple[str, str, str]:
    return caching.fair_price_parts(card_id, day.isoformat() if day else None)


def cached_fair_price(card_id: str, day: date | None, request: Request | None = None) -> Any:
    return caching.read_through(
        _fair_price_parts(card_id, day), lambda: selectors.fair_price(card_id, day), request
    )


def conditional(request: Request, value: Any, etag: str) -> HttpResponseBase:
    """``value`` with its ETag, or 304 Not Modified if the client has that version.

    A keyed answer is marked ``Cache-Control: private, no-cache`` (the key holder's; a
    client may keep it but must revalidate, cheaply, with ``If-None-Match``) by
    :class:`pokewatch_site.middleware.APIErrorMiddleware`, for every keyed response.
    """
    response: HttpResponseBase | None = get_conditional_response(request._request, etag=etag)
    if response is None:
        response = Response(value)
    response["ETag"] = etag
    return response


@extend_schema_view(
    list=extend_schema(responses={200: CardSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(responses={200: CardSerializer, **ERRORS}),
)
class CardViewSet(viewsets.ReadOnlyModelViewSet):
    """Tracked cards with their latest market price, fair price, deviation and signal."""

    throttle_scope = "read"

    # Recently priced cards first (a card never priced comes last), then by id.
    queryset = selectors.cards_with_latest().order_by(
        F("latest_price_date").desc(nulls_last=True), "card_id"
    )
    serializer_class = CardSerializer
    filterset_class = CardFilter
    lookup_field = "card_id"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "champion": selectors.champion()}

    def prefetch_cache_keys(self, request: Request) -> list[str]:
        """The cache entries a fair-price read needs, fetched with the API key's row."""
        if self.action != "fair_price":
            return []
        try:
            day = date_param(request)
        except serializers.ValidationError:
            return []  # the view answers 400
        return caching.prefetch_keys(_fair_price_parts(self.kwargs["card_id"], day))

    def get_object(self) -> Any:
        card_id = self.kwargs["card_id"]
        found = self.get_queryset().filter(card_id=card_id).first()
        if found is None:
            raise NotFound(f"Unknown card {card_id!r}.")
        return found

    @extend_schema(
        parameters=RANGE_PARAMS, responses={200: PricePointSerializer(many=True), **ERRORS}
    )
    @action(detail=True, methods=["get"])
    def prices(self, request: Request, card_id: str) -> Response:
        """Price history of one card, oldest first (`start`/`end` inclusive)."""
        params = _query(RangeQuerySerializer, request)
        history = selectors.price_history(
            selectors.card(card_id), params.get("start"), params.get("end")
        )
        page = self.paginate_queryset(history)
        return self.get_paginated_response(PricePointSerializer(page, many=True).data)

    @extend_schema(parameters=[DATE_PARAM], responses={200: FairPriceSerializer, **ERRORS})
    @action(detail=True, methods=["get"], url_path="fair-price", pagination_class=None)
    def fair_price(self, request: Request, card_id: str) -> Response:
        """The champion's prediction for that day (the latest one without `date`)."""
        day = date_param(request)
        value, etag = caching.read_entry(
            _fair_price_parts(card_id, day), lambda: selectors.fair_price(card_id, day), request
        )
        return conditional(request, value, etag)  # type: ignore[return-value]

    @extend_schema(parameters=RANGE_PARAMS, responses={200: CardTrackRecordSerializer, **ERRORS})
    @action(detail=True, methods=["get"], url_path="track-record", pagination_class=None)
    def track_record(self, request: Request, card_id: str) -> Response:
        """This card's graded past signals and their summary (DESIGN.md section 4)."""
        params = _query(RangeQuerySerializer, request)
        start, end = params.get("start"), params.get("end")

        def compute() -> dict[str, Any]:
            card = selectors.card(card_id)
            summary = selectors.track_record(start, end, card)
            period = (date.fromisoformat(summary["start"]), date.fromisoformat(summary["end"]))
            return {
                "card_id": card_id,
                **summary,
                "signals": selectors.graded_signals(card, *period),
            }

        return Response(caching.read_through(_track_key(card_id, start, end), compute))


def _track_key(scope: str, start: date | None, end: date | None) -> tuple[str, ...]:
    return ("track", scope, start.isoformat() if start else "-", end.isoformat() if end else "-")


class TrackRecordView(APIView):
    throttle_scope = "read"

    @extend_schema(parameters=RANGE_PARAMS, responses={200: TrackRecordSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        """Every served signal whose horizon has passed, graded (DESIGN.md section 4)."""
        params = _query(RangeQuerySerializer, request)
        start, end = params.get("start"), params.get("end")
        return Response(
            caching.read_through(
                _track_key("all", start, end), lambda: selectors.track_record(start, end)
            )
        )


class FairPriceView(APIView):
    throttle_scope = "read"

    @extend_schema(
        request=FairPriceRequestSerializer, responses={200: FairPriceSerializer, **ERRORS}
    )
    def post(self, request: Request) -> Response:
        """Fair price of one card on a day (latest if no date)."""
        serializer = FairPriceRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return Response(cached_fair_price(data["card_id"], data.get("date")))


class BatchFairPriceView(APIView):
    throttle_scope = "batch"

    @extend_schema(
        request=BatchFairPriceRequestSerializer,
        responses={200: BatchItemSerializer(many=True), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        """Up to 100 cards at once, in the order asked; unknown ids are reported per item."""
        serializer = BatchFairPriceRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        day = serializer.validated_data.get("date")
        card_ids = serializer.validated_data["card_ids"]
        # Every id's entry (unknown ids' too: they are cached as such) in one round trip.
        caching.prefetch(request, [_fair_price_parts(card_id, day) for card_id in card_ids])
        items = []
        for card_id in card_ids:
            try:
                result = cached_fair_price(card_id, day, request)
            except NotFound as exc:
                items.append(
                    {"card_id": card_id, "found": False, "result": None, "detail": exc.detail}
                )
            else:
                items.append({"card_id": card_id, "found": True, "result": result, "detail": None})
        return Response(items)


class SignalsView(APIView):
    """A plain APIView: no queryset, so the browsable API (a staff session) renders it
    without asking for one."""

    throttle_scope = "read"

    @extend_schema(
        parameters=[
            DATE_PARAM,
            OpenApiParameter("signal", OpenApiTypes.STR, enum=["BUY", "HOLD", "SELL"]),
        ],
        responses={
            200: inline_serializer(
                "SignalList",
                {
                    "date": serializers.DateField(allow_null=True),
                    "count": serializers.IntegerField(),
                    "results": FairPriceSerializer(many=True),
                },
            ),
            **ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        """The day's signals, largest deviations first. By default the latest day on which
        the tracked cards were scored (at least half as many cards as the best-covered day
        of the 30 before it), not a day on which only a few cards have a price yet."""
        params = _query(SignalQuerySerializer, request)
        day, signal = params.get("date"), params.get("signal")

        def compute() -> dict[str, Any]:
            found_day, rows = selectors.signals(day, signal)
            if day is not None and not rows and not selectors.signals(day)[1]:
                raise NotFound(f"No predictions on {day.isoformat()}.")
            return {
                "date": found_day.isoformat() if found_day else None,
                "count": len(rows),
                "results": rows,
            }

        key_day = day.isoformat() if day else "latest"
        value, etag = caching.read_entry(("signals", key_day, signal or "all"), compute, request)
        return conditional(request, value, etag)  # type: ignore[return-value]
