"""Keyword lexicon: each word a fixed phoneme string (ARPAbet-like, the synthesiser's phone set).

The ten Speech Commands words plus the other words of Speech Commands v0.02 that count as "unknown".
"""

from __future__ import annotations

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")

LEXICON: dict[str, tuple[str, ...]] = {
    "yes": ("y", "eh", "s"),
    "no": ("n", "ow"),
    "up": ("ah", "p"),
    "down": ("d", "aw", "n"),
    "left": ("l", "eh", "f", "t"),
    "right": ("r", "ay", "t"),
    "on": ("aa", "n"),
    "off": ("ao", "f"),
    "stop": ("s", "t", "aa", "p"),
    "go": ("g", "ow"),
    "bed": ("b", "eh", "d"),
    "bird": ("b", "er", "d"),
    "cat": ("k", "ae", "t"),
    "dog": ("d", "ao", "g"),
    "happy": ("hh", "ae", "p", "iy"),
    "house": ("hh", "aw", "s"),
    "marvin": ("m", "aa", "r", "v", "ih", "n"),
    "sheila": ("sh", "iy", "l", "ah"),
    "tree": ("t", "r", "iy"),
    "wow": ("w", "aw"),
    "zero": ("z", "iy", "r", "ow"),
    "one": ("w", "ah", "n"),
    "two": ("t", "uw"),
    "three": ("th", "r", "iy"),
    "four": ("f", "ao", "r"),
    "five": ("f", "ay", "v"),
    "six": ("s", "ih", "k", "s"),
    "seven": ("s", "eh", "v", "ah", "n"),
    "eight": ("ey", "t"),
    "nine": ("n", "ay", "n"),
    "backward": ("b", "ae", "k", "w", "er", "d"),
    "forward": ("f", "ao", "r", "w", "er", "d"),
    "follow": ("f", "aa", "l", "ow"),
    "learn": ("l", "er", "n"),
    "visual": ("v", "ih", "zh", "uw", "ah", "l"),
}


def phones(word: str) -> list[str]:
    from dlsys.core.errors import UserError

    if word not in LEXICON:
        raise UserError(f"no pronunciation for word {word!r}; known words: {', '.join(LEXICON)}")
    return list(LEXICON[word])
