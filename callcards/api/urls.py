from django.urls import path

from callcards.api import views

app_name = "callcards-api"

urlpatterns = [
    path("batches/", views.BatchList.as_view(), name="batches"),
    path("cards/", views.CardList.as_view(), name="cards"),
    path("cards/<int:pk>/", views.CardDetail.as_view(), name="card"),
    path("cards/<int:pk>/pin/", views.CardPin.as_view(), name="card-pin"),
    path("calls/", views.CallList.as_view(), name="calls"),
]
