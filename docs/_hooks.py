"""mkdocs hooks for the Kysera site.

- Leave out nav entries for guides that have not landed yet. The nav in mkdocs.yml lists every
  guide the project plans, in reading order. A guide arrives when its package's branch is
  merged; until then its entry is dropped here (and logged) instead of failing the strict
  build. Only entries under ``Guides`` are optional: a missing page anywhere else still fails.
- Add guides that the nav does not list yet (a page in docs/ that no nav entry names) at the
  end of ``Guides``, titled by their first heading, so a new guide is never left unreachable.
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


def _listed(entries: list[Any]) -> set[str]:
    found: set[str] = set()
    for entry in entries:
        target = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(target, list):
            found |= _listed(target)
        elif isinstance(target, str):
            found.add(target)
    return found


def _title(page: Path) -> str:
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return page.stem.replace("-", " ").capitalize()


def on_config(config: Any) -> Any:
    docs_dir = Path(config["docs_dir"])
    listed = _listed(config["nav"])
    for section in config["nav"]:
        if isinstance(section, dict) and OPTIONAL_SECTION in section:
            guides = _present(section[OPTIONAL_SECTION], docs_dir)
            for page in sorted(docs_dir.glob("*.md")):
                if page.name not in listed:
                    log.info("Guide %s is not in the nav of mkdocs.yml: added to Guides", page.name)
                    guides.append({_title(page): page.name})
            section[OPTIONAL_SECTION] = guides
    return config


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return _LINK_TARGET.sub(lambda match: f"]({PUBLISHED_ELSEWHERE[match[1]]})", markdown)
