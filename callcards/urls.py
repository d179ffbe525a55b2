from django.urls import path

from callcards import views

app_name = "callcards"

urlpatterns = [
    path("", views.card_list, name="cards"),
    path("cards/<int:pk>/", views.card_detail, name="card"),
    path("cards/<int:pk>/holder/", views.card_holder, name="card-holder"),
    path("cards/<int:pk>/pin/", views.card_pin, name="card-pin"),
    path("batches/", views.batch_list, name="batches"),
    path("usage/", views.usage_report, name="usage"),
    path("calls/", views.call_list, name="calls"),
    path("settings/", views.settings_edit, name="settings"),
]
