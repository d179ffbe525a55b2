from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.forms import LoginForm

# The ModelAdmins, before admin.site.urls lists them (config/lazy_admin.py).
admin.autodiscover()

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:entry", permanent=False)),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(success_url="/password/done/"),
        name="password_change",
    ),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("portal/", include("accounts.urls")),
    path("portal/<slug:company_slug>/telephony/", include("telephony.urls")),
    path("api/", include("accounts.api.urls")),
    path("api/telephony/", include("telephony.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[]),
        name="api-docs",
    ),
    path("api/click2call/", include("click2call.api.urls")),
    path("api/queues/", include("queues.api.urls")),
    path("api/callcards/", include("callcards.api.urls")),
    path("api/tickets/", include("tickets.api.urls")),
    path("c2c/", include("click2call.widget_urls")),
    path("portal/<slug:company_slug>/click2call/", include("click2call.urls")),
    path("portal/<slug:company_slug>/queues/", include("queues.urls")),
    path("portal/<slug:company_slug>/callcards/", include("callcards.urls")),
    path("portal/<slug:company_slug>/tickets/", include("tickets.urls")),
]

handler404 = "config.views.not_found"
