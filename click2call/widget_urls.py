from django.urls import path

from click2call import widget

app_name = "click2call-widget"

urlpatterns = [
    path("demo/", widget.demo, name="demo"),
    path("<str:public_key>/widget.js", widget.widget_js, name="widget"),
]
