from rest_framework.permissions import BasePermission


class IsCompanyMember(BasePermission):
    """API access for signed-in users of an active company; querysets are scoped by views."""

    message = "Only users of an active company may use this API."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.company_id and user.company.active)
