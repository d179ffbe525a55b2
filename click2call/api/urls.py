from django.urls import path

from click2call.api import stats, views

app_name = "click2call-api"

urlpatterns = [
    path("requests/", views.CallRequestCreate.as_view(), name="request-create"),
    path("status/<str:token>/", views.CallRequestStatus.as_view(), name="status"),
    # The company's own reads of its requests (requests/ is the banner's, on a campaign key).
    path("calls/", views.CallList.as_view(), name="calls"),
    path("calls/<int:pk>/", views.CallDetail.as_view(), name="call"),
    path("stats/", stats.CallStats.as_view(), name="stats"),
]
