from django.urls import path

from accounts import views

app_name = "portal"

urlpatterns = [
    path("", views.portal_entry, name="entry"),
    path("<slug:company_slug>/", views.home, name="home"),
    path("<slug:company_slug>/users/", views.user_list, name="users"),
    path("<slug:company_slug>/api-tokens/", views.api_token_list, name="api-tokens"),
    path("<slug:company_slug>/api-tokens/<int:pk>/revoke/", views.api_token_revoke, name="api-token-revoke"),
]
