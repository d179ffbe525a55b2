from django.urls import path

from telephony import views

app_name = "telephony"

urlpatterns = [
    path("calls/", views.call_record_list, name="calls"),
    path("calls/<int:pk>/", views.call_record_detail, name="call"),
    path("webhooks/", views.webhook_delivery_list, name="webhooks"),
]
