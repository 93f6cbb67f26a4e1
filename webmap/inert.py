"""Data embedded by folium can never be read as a Jinja template (server-side template injection).

branca renders each element's macro output a second time as a Jinja template
(``MacroElement.render`` wraps it in ``Element(...)``, whose text *is* a template). A building
named ``{{ cycler.__init__.__globals__.os.getpid() }}`` therefore ran on the server when the
map was built, ``{{7*7}}`` showed as ``49``, and a lone ``{{`` failed the page with a
``TemplateSyntaxError``. Every value folium embeds passes through the ``tojson`` filter or
``tojavascript``; :func:`install` makes both write a ``{`` that opens a Jinja tag (``{{``,
``{%``, ``{#``) inside a JSON string as ``\\u007b``, which JavaScript reads back as ``{``.
(Outside strings JSON never has two braces in a row, nor ``{%`` or ``{#``; a tile URL's
``{z}`` stays as it is.)
"""

from __future__ import annotations

import json
import re
from typing import Any

import folium.template
import jinja2

__all__ = ["inert_json", "install"]

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_TAG_OPENER = re.compile(r"\{(?=[{%#])")


def inert_json(text: str) -> str:
    """JSON *text* with each ``{`` that opens a Jinja tag inside a string written as ``\\u007b``.

    The JSON value is the same.

    Examples
    --------
    >>> inert_json('{"name": "{{7*7}}", "url": "/{z}/{x}.png"}')
    '{"name": "\\\\u007b{7*7}}", "url": "/{z}/{x}.png"}'
    >>> json.loads(inert_json('{"name": "{{7*7}}"}'))
    {'name': '{{7*7}}'}
    """
    return _JSON_STRING.sub(lambda m: _TAG_OPENER.sub(r"\\u007b", m.group(0)), text)


def _inert_dumps(obj: Any, **kwargs: Any) -> str:
    return inert_json(json.dumps(obj, **kwargs))


def _configure(env: jinja2.Environment) -> None:
    env.policies["json.dumps_function"] = _inert_dumps  # what the ``tojson`` filter calls


def install() -> None:
    """Make folium's ``tojson`` and ``tojavascript`` output Jinja-inert (idempotent)."""
    if getattr(folium.template, "_wangge_inert", False):
        return
    env_init = folium.template.Environment.__init__

    def __init__(self: jinja2.Environment, *args: Any, **kwargs: Any) -> None:
        env_init(self, *args, **kwargs)
        _configure(self)

    folium.template.Environment.__init__ = __init__  # environments made later
    _configure(folium.template.Template("").environment)  # the one folium's classes hold now
    escaped_json = folium.template._to_escaped_json
    folium.template._to_escaped_json = lambda obj: inert_json(escaped_json(obj))
    folium.template._wangge_inert = True
