"""Griffe extension for the API reference (loaded by mkdocstrings, see mkdocs.yml).

Google style accepts ``Example:`` as well as ``Examples:``; griffe only treats the plural as
an examples section and would render a singular one as Markdown prose, where a doctest's
output such as ``['a', 'b']`` reads as a link reference. This renames the heading so that
both spellings render as code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

SINGULAR_EXAMPLE_HEADING = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class SingularExampleSections(griffe.Extension):
    """Treat a docstring's ``Example:`` section as ``Examples:``."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is not None and "Example:" in docstring.value:
            docstring.value = SINGULAR_EXAMPLE_HEADING.sub(r"\1Examples:", docstring.value)
