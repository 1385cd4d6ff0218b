from django.urls import include, path
from rest_framework.routers import SimpleRouter

from prices import views

router = SimpleRouter()
router.register("cards", views.CardViewSet, basename="card")

urlpatterns = [
    path("fair-price/", views.FairPriceView.as_view(), name="fair-price"),
    path("fair-price/batch/", views.BatchFairPriceView.as_view(), name="fair-price-batch"),
    path("signals/", views.SignalsView.as_view(), name="signals"),
    path("track-record/", views.TrackRecordView.as_view(), name="track-record"),
    path("", include(router.urls)),
]
