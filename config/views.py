from django.views.defaults import page_not_found

from config.exceptions import api_not_found_response


def not_found(request, exception):
    """An unknown URL under /api/ is the API's JSON 404, as the schema documents; elsewhere the page."""
    if request.path.startswith("/api/"):
        return api_not_found_response()
    return page_not_found(request, exception)
