"""The query filters of the API's lists (`?status=`, `?queue=`), checked like a body."""

from rest_framework import serializers

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
