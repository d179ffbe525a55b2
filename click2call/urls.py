from django.urls import path

from click2call import stats_views, views

app_name = "click2call"

urlpatterns = [
    path("calls/", views.call_list, name="calls"),
    path("stats/", stats_views.stats_page, name="stats"),
    path("stats/live/", stats_views.stats_live, name="stats-live"),
    path("calls/<int:pk>/", views.call_detail, name="call"),
    path("calls/<int:pk>/callback/", views.call_callback, name="call-callback"),
    path("calls/<int:pk>/comments/", views.call_comment_add, name="call-comment"),
    path("comment-types/", views.comment_type_list, name="comment-types"),
    path("comment-types/new/", views.comment_type_edit, name="comment-type-new"),
    path("comment-types/<int:pk>/", views.comment_type_edit, name="comment-type"),
    path("campaigns/", views.campaign_list, name="campaigns"),
    path("campaigns/new/", views.campaign_edit, name="campaign-new"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign"),
    path("campaigns/<int:pk>/edit/", views.campaign_edit, name="campaign-edit"),
    path("campaigns/<int:pk>/operators/", views.campaign_operators, name="campaign-operators"),
    path("campaigns/<int:pk>/deactivate/", views.campaign_deactivate, name="campaign-deactivate"),
    path("campaigns/<int:pk>/delete/", views.campaign_delete, name="campaign-delete"),
    path("campaigns/<int:pk>/public-key/", views.campaign_public_key_rotate, name="campaign-public-key"),
    path("campaigns/<int:pk>/secret-key/", views.campaign_secret_key_rotate, name="campaign-secret-key"),
    path("operators/", views.operator_list, name="operators"),
    path("operators/<int:pk>/", views.operator_list, name="operator"),
    path("tariffs/", views.tariff_list, name="tariffs"),
    path("tariffs/<int:pk>/", views.tariff_detail, name="tariff"),
    path("tariffs/<int:pk>/import/", views.tariff_import, name="tariff-import"),
    path("tariffs/<int:pk>/imports/<int:job>/", views.tariff_import_detail, name="tariff-import-detail"),
    path("tariffs/<int:pk>/export/", views.tariff_export, name="tariff-export"),
    path("invoices/", views.invoice_list, name="invoices"),
    path("invoices/<int:pk>/pdf/", views.invoice_pdf, name="invoice-pdf"),
    path("blocked/", views.blocked_list, name="blocked"),
    path("blocked/<int:pk>/delete/", views.blocked_delete, name="blocked-delete"),
]
