from rest_framework import generics

from accounts.api.serializers import CompanySerializer


class CompanyDetail(generics.RetrieveAPIView):
    """The signed-in user's company."""

    serializer_class = CompanySerializer

    def get_object(self):
        return self.request.user.company
