from django.urls import path

from accounts import views

app_name = "portal"

urlpatterns = [
    path("", views.portal_entry, name="entry"),
    path("<slug:company_slug>/", views.home, name="home"),
    path("<slug:company_slug>/users/", views.user_list, name="users"),
]
