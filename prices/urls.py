from django.urls import path

from prices import views

urlpatterns = [
    path("health/", views.HealthView.as_view(), name="health"),
]
