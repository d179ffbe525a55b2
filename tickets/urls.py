from django.urls import path

from tickets import views

app_name = "tickets"

urlpatterns = [
    path("", views.hop_list, name="log"),
    path("calls/<int:pk>/", views.call_detail, name="call"),
    path("calls/<int:pk>/recording/", views.call_recording, name="call-recording"),
    path("lines/", views.line_list, name="lines"),
    path("lines/<int:pk>/", views.line_edit, name="line"),
    path("lines/<int:pk>/technicians/", views.technician_list, name="technicians"),
    path("technicians/<int:pk>/", views.technician_edit, name="technician"),
    path("technicians/<int:pk>/deactivate/", views.technician_deactivate, name="technician-deactivate"),
    path("technicians/<int:pk>/move/", views.technician_move, name="technician-move"),
    path("technicians/<int:pk>/in-charge/", views.technician_in_charge, name="technician-in-charge"),
    path("sms/", views.sms_settings_edit, name="sms"),
]
