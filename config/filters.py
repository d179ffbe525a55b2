"""The query filters of the API's lists (`?status=`, `?queue=`), checked like a body."""

import re

from rest_framework import serializers

from config.periods import EARLIEST, LATEST

EMPTY_FILTER = "Give a value, or leave the filter out to list every row."


class ListFilterSerializer(serializers.Serializer):
    """A filter that is given takes a value: `?status=` is a 400, never read as "no filter".

    DRF reads an empty query value as a field not given; a client that sends one has a bug (an unset
    variable in its URL), and listing every row would hide it. The schema says so too (minLength: 1).
    """

    def to_internal_value(self, data):
        empty = {name: [EMPTY_FILTER] for name in self.fields if name in data and data.get(name) == ""}
        if empty:
            raise serializers.ValidationError(empty, code="blank")
        return super().to_internal_value(data)


ROW_ID = {"min_value": 1, "max_value": 2**63 - 1}
# int() would also take " 7", "1_0" and Arabic-Indic digits: an id is ASCII digits (or a JSON number).
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)


class RowIdField(serializers.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(**ROW_ID, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and not _ASCII_DIGITS.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class DayField(serializers.DateField):
    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if not EARLIEST <= day <= LATEST:
            raise serializers.ValidationError(f"A date from {EARLIEST} to {LATEST}.")
        return day
