"""mkdocs hooks for the Kysera site.

- Leave out nav entries for guides that have not landed yet. The nav in mkdocs.yml lists every
  guide the project plans, in reading order. A guide arrives when its package's branch is
  merged; until then its entry is dropped here (and logged) instead of failing the strict
  build. Only entries under ``Guides`` are optional: a missing page anywhere else still fails.
- Point links to files outside docs/ that the site publishes as pages at those pages: a guide
  links ``../benchmarks/RESULTS.md`` (right when read on GitHub), the site has
  ``performance.md``, which includes that file.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.kysera")

OPTIONAL_SECTION = "Guides"

# Files outside docs/ -> the page of the site that shows them.
PUBLISHED_ELSEWHERE = {"../benchmarks/RESULTS.md": "performance.md"}
_LINK_TARGET = re.compile(r"\]\((" + "|".join(map(re.escape, PUBLISHED_ELSEWHERE)) + r")\)")


def _present(entries: list[Any], docs_dir: Path) -> list[Any]:
    kept = []
    for entry in entries:
        (title, target), *_ = entry.items()
        if isinstance(target, str) and not (docs_dir / target).exists():
            log.info("Guide %s (%s) has not landed yet: left out of the nav", target, title)
            continue
        kept.append(entry)
    return kept


def on_config(config: Any) -> Any:
    docs_dir = Path(config["docs_dir"])
    for section in config["nav"]:
        if isinstance(section, dict) and OPTIONAL_SECTION in section:
            section[OPTIONAL_SECTION] = _present(section[OPTIONAL_SECTION], docs_dir)
    return config


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return _LINK_TARGET.sub(lambda match: f"]({PUBLISHED_ELSEWHERE[match[1]]})", markdown)
