"""Cheap per-prompt analysis: what one prompt says about the account that sent it.

Everything here must run per event on the hot path, so it is regular expressions
compiled once (they scan in C) over a bounded slice of the prompt, and CRC32 for
stable hashes (Python's ``hash`` is salted per process, which would make a restored
checkpoint disagree with the process that wrote it).

Three facts come out of a prompt:

- does it ask for the model's reasoning trace (``elicits_reasoning``)? Distillers
  want the chain of thought, rubric grading and restated answers with explanations,
  because that is what makes a student model reason;
- which capability it targets (``topic_of``): coding, maths, tool use, ...
  Distillers concentrate on the capabilities worth stealing, or sweep all of them;
- its *skeleton* (``skeleton_hashes``): the fixed text around the slots of a
  template. Templated prompts share a prefix or a suffix once digits are masked.
"""

from __future__ import annotations

import re
import zlib
from itertools import repeat

#: Characters of a prompt that are examined. Templates and elicitation phrasings sit
#: at the start or the end of a prompt, so a long prompt is read at both ends only.
HEAD_CHARS = 400
TAIL_CHARS = 200
SKELETON_CHARS = 32
MAX_WORDS = 64
#: Reasoning phrasings are searched for in this many characters at each end.
PHRASE_CHARS = 160


def _words(text: str) -> list[str]:
    return text.split()


_REASONING = re.compile(
    r"step[ -]by[ -]step|show (?:your|all|the) (?:work|reasoning|thinking|steps)"
    r"|explain (?:your|the|each|every) (?:reasoning|steps?|logic|thought)"
    r"|(?:think|reason) (?:carefully|through|about it|aloud|out loud)|let'?s think"
    r"|chain[ -]of[ -]thought|thought process|walk (?:me )?through|<think"
    r"|before (?:answering|giving)|rationale|justify (?:your|each|the)"
    r"|rubric|grade (?:the|this|each)|score (?:the|this|each) (?:answer|response)"
    r"|restate|detailed explanation|reasoning trace|internal reasoning"
)
#: Words without which no phrase of ``_REASONING`` can match: a set test in C rules
#: out most prompts before the (slower) regular expression runs.
_REASONING_TRIGGERS = frozenset(
    variant
    for word in _words(
        "step step-by-step show explain think reason reasoning let's lets chain thought "
        "walk <think> <thinking> before rationale justify rubric grade score restate "
        "detailed trace internal"
    )
    for variant in (word, word + ".", word + ",", word + ":")
)

#: Capability families. Ties go to the earlier family (more specific, more valuable).
TOPICS: tuple[str, ...] = ("tool", "code", "math", "reasoning", "writing", "other")
CAPABILITY_TOPICS = frozenset({"tool", "code", "math", "reasoning"})
_TOPIC_WORDS: dict[str, list[str]] = {
    "tool": _words(
        "toolformer tool tools api apis calculator wikipedia agent agents plugin webhook "
        "function_call tool_call"
    ),
    "code": _words(
        "code python javascript java c++ c# sql function functions program script "
        "implement class algorithm debug compile regex html css bash shell rust golang "
        "typescript react snippet refactor bug method array recursion variable loop "
        "node.js"
    ),
    "math": _words(
        "calculate compute equation sum average percent percentage probability integral "
        "derivative solve theorem prove total cost costs price many much each per + - * / "
        "= x"
    ),
    "reasoning": _words(
        "logic logical puzzle riddle deduce infer analogy syllogism premise premises "
        "conclusion true false valid"
    ),
    "writing": _words(
        "write essay poem story email letter summarize summarise rewrite translate "
        "paraphrase describe draft blog tweet"
    ),
}
#: Keyword -> topic, with the punctuation a keyword commonly carries (splitting on
#: whitespace only is 3x cheaper than stripping punctuation first).
_WORD_TOPIC: dict[str, int] = {
    variant: TOPICS.index(topic)
    for topic, words in _TOPIC_WORDS.items()
    for word in words
    for variant in (word, word + ",", word + ".", word + "?", word + ":", word + ")", "(" + word)
}
_ASCII_DIGITS = b"0123456789"
_ASCII_DIGITS_TO_HASH = bytes.maketrans(b"0123456789", b"##########")
_MATH = TOPICS.index("math")
_OTHER = len(TOPICS) - 1


def _window(prompt: str) -> str:
    """The part of a prompt worth reading, lower-cased."""
    if len(prompt) <= HEAD_CHARS + TAIL_CHARS:
        return prompt.lower()
    return (prompt[:HEAD_CHARS] + "\n" + prompt[-TAIL_CHARS:]).lower()


def words_of(text: str) -> list[str]:
    """Whitespace-separated words of a (lower-cased) prompt, at most :data:`MAX_WORDS`.

    >>> words_of("solve: 2 + 3, then explain!")
    ['solve:', '2', '+', '3,', 'then', 'explain!']
    """
    return text.split(None, MAX_WORDS)[:MAX_WORDS]


def elicits_reasoning(text: str, words: list[str] | None = None) -> bool:
    """Whether a (lower-cased) prompt asks for a reasoning trace.

    >>> elicits_reasoning("solve 2x+3=7. show your work step by step.")
    True
    >>> elicits_reasoning("when did the eagles win last super bowl?")
    False
    """
    if _REASONING_TRIGGERS.isdisjoint(words if words is not None else words_of(text)):
        return False
    if len(text) > 2 * PHRASE_CHARS:  # phrasings sit in a template's head or tail
        text = text[:PHRASE_CHARS] + "\n" + text[-PHRASE_CHARS:]
    return _REASONING.search(text) is not None


def topic_of(text: str, words: list[str]) -> int:
    """Index into :data:`TOPICS` of the capability a prompt's words target.

    Digits count towards maths: word problems are mostly numbers and names.

    >>> def topic(text): return TOPICS[topic_of(text, words_of(text))]
    >>> topic("write a python function that reverses a list")
    'code'
    >>> topic("she has 16 eggs and eats 3. how many are left?")
    'math'
    >>> topic("who wrote he ain't heavy he's my brother?")
    'other'
    """
    # map/list.count keep the per-word loop in C (a Python loop over words cost 3x).
    ids = list(map(_WORD_TOPIC.get, words, repeat(_OTHER)))
    counts = [ids.count(topic) for topic in range(_OTHER)]
    raw = text.encode(errors="replace")
    counts[_MATH] += (len(raw) - len(raw.translate(None, _ASCII_DIGITS))) // 3
    best = max(counts)
    return counts.index(best) if best > 0 else _OTHER


def skeleton_hashes(text: str) -> tuple[int, int]:
    """Stable hashes of the digit-masked head and tail of a (lower-cased) prompt.

    Two prompts filled into one template share at least one of them; two prompts
    people typed almost never do (unless identical).

    >>> a = skeleton_hashes("translate to french, keep the tone formal: the cat sat.")
    >>> b = skeleton_hashes("translate to french, keep the tone formal: 12 dogs ran away.")
    >>> a[0] == b[0], a[1] == b[1]
    (True, False)
    """
    head = text[:SKELETON_CHARS].encode(errors="replace").translate(_ASCII_DIGITS_TO_HASH)
    tail = text[-SKELETON_CHARS:].encode(errors="replace").translate(_ASCII_DIGITS_TO_HASH)
    return zlib.crc32(head), zlib.crc32(tail) ^ 0x5BD1E995


def content_hash(prompt: str) -> int:
    """Stable hash of a whole prompt (exact repeats: benchmark reruns, retries).

    >>> content_hash("abc") == content_hash("abc") != content_hash("abd")
    True
    """
    return zlib.crc32(prompt.encode(errors="replace"))


def fingerprint_int(prompt_fingerprint: str) -> int:
    """The upstream 64-bit SimHash (16 hex chars) as an int.

    >>> fingerprint_int("00000000000000ff")
    255
    """
    return int(prompt_fingerprint, 16)


def analyse(prompt: str) -> tuple[bool, int, int, int, int]:
    """All per-prompt facts at once: (reasoning, topic, head hash, tail hash, content hash).

    >>> r, t, *_ = analyse("Write a Python function to sort a list. Explain your reasoning.")
    >>> r, TOPICS[t]
    (True, 'code')
    """
    text = _window(prompt)
    words = words_of(text)
    head, tail = skeleton_hashes(text)
    return (
        elicits_reasoning(text, words),
        topic_of(text, words),
        head,
        tail,
        zlib.crc32(text.encode(errors="replace")) ^ len(prompt),
    )
