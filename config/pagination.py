"""Limit/offset pages for every list of the API, with limits a client is told about."""

import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

# int() would also take " 7", "1_0" and Arabic-Indic digits; a query parameter takes ASCII digits only.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,12}", re.ASCII)


class ApiPagination(LimitOffsetPagination):
    """`?limit=` (1 to 500, default PAGE_SIZE) and `?offset=`; anything else is a 400, never a guess."""

    max_limit = 500
    # Beyond any table here, and an OFFSET every database takes.
    max_offset = 2**31 - 1

    def get_limit(self, request):
        return self._whole_number(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request):
        return self._whole_number(request, self.offset_query_param, 0, 0, self.max_offset)

    @staticmethod
    def _whole_number(request, name, default, lowest, highest):
        text = request.query_params.get(name)
        if text is None:
            return default
        if not _WHOLE_NUMBER.fullmatch(text) or not lowest <= int(text) <= highest:
            raise ValidationError({name: [f"Must be a whole number from {lowest} to {highest}."]})
        return int(text)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit, "default": self.default_limit},
            self.offset_query_param: {"minimum": 0, "maximum": self.max_offset, "default": 0},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds[parameter["name"]])
        return parameters
