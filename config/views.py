from django.http import JsonResponse
from django.views.defaults import page_not_found


def not_found(request, exception):
    """An unknown URL under /api/ is DRF's JSON 404, as the schema documents; elsewhere the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
