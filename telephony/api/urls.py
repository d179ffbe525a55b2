from django.urls import path

from telephony.api import views

urlpatterns = [
    path("calls/", views.CallRecordList.as_view(), name="api-call-records"),
    path("calls/<int:pk>/", views.CallRecordDetail.as_view(), name="api-call-record"),
    path("webhook-deliveries/", views.WebhookDeliveryList.as_view(), name="api-webhook-deliveries"),
    path("events/", views.PushedEventView.as_view(), name="api-pushed-events"),
]
