"""kysera.ttl: rows that expire, hidden at read time and purged in bounded batches."""

from kysera.ttl.clock import database_now as database_now
from kysera.ttl.durations import parse_duration as parse_duration
from kysera.ttl.filtering import filter_select as filter_select
from kysera.ttl.mixin import TTLMixin as TTLMixin
from kysera.ttl.plugin import TTLPlugin as TTLPlugin

__all__ = ["TTLMixin", "TTLPlugin", "database_now", "filter_select", "parse_duration"]
