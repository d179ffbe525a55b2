from django.urls import path

from tickets.api import views

app_name = "tickets-api"

urlpatterns = [
    path("lines/", views.LineList.as_view(), name="lines"),
    path("lines/<int:pk>/", views.LineDetail.as_view(), name="line"),
    path("lines/<int:pk>/hunt-order/", views.HuntOrder.as_view(), name="line-hunt-order"),
    path("technicians/", views.TechnicianList.as_view(), name="technicians"),
    path("technicians/<int:pk>/", views.TechnicianDetail.as_view(), name="technician"),
    path("log/", views.HopList.as_view(), name="log"),
    path("calls/", views.CallList.as_view(), name="calls"),
    path("calls/<int:pk>/", views.CallDetail.as_view(), name="call"),
]
