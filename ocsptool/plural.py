"""Counted nouns in output: ``1 certificate``, ``2 failed refreshes``, one rule everywhere."""

from __future__ import annotations

#: English plurals that adding an ``s`` gets wrong.
_IRREGULAR = {"refresh": "refreshes", "failed refresh": "failed refreshes"}


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, the noun in the plural unless ``count`` is 1.

    ``noun`` may be a phrase (``staple valid``): the first word is the one counted.
    """
    if count == 1:
        return f"{count} {noun}"
    if many is None:
        head, space, tail = noun.partition(" ")
        many = _IRREGULAR.get(noun) or (_word(head) + space + tail if space else _word(noun))
    return f"{count} {many}"


def _word(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith(("s", "sh", "ch", "x")):
        return word + "es"
    return word + "s"
