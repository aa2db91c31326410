"""URL converters shared by the pages and the API."""

from django.urls import register_converter


class AnyText:
    """A run of any characters, newlines and '/' included (a source_event is
    whatever the export wrote; links quote it)."""

    regex = r"[\s\S]+"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(AnyText, "anytext")
