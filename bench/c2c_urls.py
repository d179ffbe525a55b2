"""The platform's URLs plus a bare JSON view: the floor the banner's POST is measured against."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as platform_urlpatterns


@csrf_exempt
def bare(request):
    return JsonResponse({"ok": True}, status=201)


urlpatterns = [*platform_urlpatterns, path("bench/bare/", bare)]
