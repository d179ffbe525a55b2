from django.urls import path

from click2call.api import stats, views

app_name = "click2call-api"

urlpatterns = [
    path("requests/", views.CallRequestCreate.as_view(), name="request-create"),
    path("status/<str:token>/", views.CallRequestStatus.as_view(), name="status"),
    path("stats/", stats.CallStats.as_view(), name="stats"),
]
