from django.urls import path

from queues.api import views

app_name = "queues-api"

urlpatterns = [
    path("queues/", views.QueueList.as_view(), name="queues"),
    path("queues/<int:pk>/", views.QueueDetail.as_view(), name="queue"),
    path("queues/<int:pk>/load/", views.QueueLoad.as_view(), name="queue-load"),
    path("queues/<int:pk>/unload/", views.QueueUnload.as_view(), name="queue-unload"),
    path("agents/", views.AgentList.as_view(), name="agents"),
    path("agents/<int:pk>/", views.AgentDetail.as_view(), name="agent"),
    path("agents/<int:pk>/status/", views.AgentStatus.as_view(), name="agent-status"),
    path("me/", views.Me.as_view(), name="me"),
    path("tiers/", views.TierList.as_view(), name="tiers"),
    path("tiers/<int:pk>/", views.TierDetail.as_view(), name="tier"),
    path("members/", views.MemberList.as_view(), name="members"),
    path("members/<int:pk>/", views.MemberDetail.as_view(), name="member"),
    path("events/", views.EventList.as_view(), name="events"),
]
