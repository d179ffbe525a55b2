from django.urls import path

from accounts.api import views

urlpatterns = [
    path("company/", views.CompanyDetail.as_view(), name="api-company"),
]
