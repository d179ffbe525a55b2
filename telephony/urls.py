from django.urls import path

from telephony import views

app_name = "telephony"

urlpatterns = [
    path("calls/", views.call_record_list, name="calls"),
    path("calls/<int:pk>/", views.call_record_detail, name="call"),
    path("webhooks/", views.webhook_delivery_list, name="webhooks"),
    path("webhooks/secret/", views.webhook_secret, name="webhook-secret"),
    path("push-tokens/", views.push_token_list, name="push-tokens"),
    path("push-tokens/<int:pk>/revoke/", views.push_token_revoke, name="push-token-revoke"),
]
