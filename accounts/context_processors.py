def company(request):
    """The signed-in user's company, for the portal's navigation."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.company_id:
        return {"company": user.company}
    return {}
