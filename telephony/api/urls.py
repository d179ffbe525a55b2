from django.urls import path

from telephony.api import views

urlpatterns = [
    path("calls/", views.CallRecordList.as_view(), name="api-call-records"),
    path("calls/<int:pk>/", views.CallRecordDetail.as_view(), name="api-call-record"),
    path("webhook-deliveries/", views.WebhookDeliveryList.as_view(), name="api-webhook-deliveries"),
    path("events/", views.PushedEventView.as_view(), name="api-pushed-events"),
    path("push-tokens/", views.PushTokenListCreate.as_view(), name="api-push-tokens"),
    path("push-tokens/<int:pk>/revoke/", views.PushTokenRevoke.as_view(), name="api-push-token-revoke"),
    path("webhook-secret/", views.WebhookSecretView.as_view(), name="api-webhook-secret"),
    path("webhook-secret/rotate/", views.WebhookSecretRotate.as_view(), name="api-webhook-secret-rotate"),
]
