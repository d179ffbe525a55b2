from django.urls import path

from queues import views

app_name = "queues"

urlpatterns = [
    path("", views.wallboard, name="wallboard"),
    path("wallboard.json", views.wallboard_data, name="wallboard-data"),
    path("agents/", views.agent_list, name="agents"),
    path("agents/<int:pk>/", views.agent_detail, name="agent"),
    path("agents/<int:pk>/status/", views.agent_status, name="agent-status"),
    path(
        "agents/<int:pk>/calls/<int:offer_pk>/disposition/",
        views.agent_disposition,
        name="agent-disposition",
    ),
    path("reports/queues/", views.queue_report, name="queue-report"),
    path("reports/agents/", views.agent_report, name="agent-report"),
    path("events/", views.event_list, name="events"),
]
