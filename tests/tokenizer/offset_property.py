"""The offsets property every test checks: a token's span, normalised as the model normalises, is its text.

Tokens cut from one original character (NFKC "…" -> ".", ".", ".") share its span and together spell its
normalisation; a token that starts or ends inside one character's expansion ("ﬁnal" -> "▁f" "in" "al")
gets the smallest span that holds it. Characters outside every span must normalise to nothing.
"""

from __future__ import annotations


def normalise(ours, span_text: str) -> str:
    if ours.do_lower_case:
        span_text = "".join(c.lower() for c in span_text)
    return ours.sp_model.normalize(span_text).removeprefix("▁")


def check_offsets_property(ours, text: str, tokens: list[str], spans: list[tuple[int, int]]) -> None:
    assert len(tokens) == len(spans), text
    specials = set(ours.all_special_tokens)
    previous_start = 0
    i = 0
    while i < len(tokens):
        start, end = spans[i]
        assert 0 <= start < end <= len(text), (text, tokens[i], spans[i])
        assert start >= previous_start, (text, "spans go backwards", spans)
        previous_start = start
        j = i + 1
        while j < len(tokens) and spans[j] == spans[i]:
            j += 1  # tokens cut from the same original character(s)
        group = tokens[i:j]
        covered = text[start:end]
        if group == ["▁"]:  # a kept lone "▁" stands for whitespace between two words
            assert ours.sp_model.normalize("a" + covered + "b") == "▁a▁b", (text, covered)
        elif len(group) == 1 and group[0] in specials and not ours.split_special_tokens:
            assert covered == group[0], (text, covered)
        else:
            expected = "".join(t.removeprefix("▁") if k == 0 else t for k, t in enumerate(group))
            normalised = normalise(ours, covered)
            if normalised != expected:
                # a token boundary inside one character's expansion ("ﬁnal" -> "▁f" | "in" | "al"): the span
                # must be the smallest one that holds the token, and share its edge character with a neighbour
                assert expected in normalised, (text, group, covered)
                assert expected not in normalise(ours, text[start + 1:end]), (text, group, covered)
                assert expected not in normalise(ours, text[start:end - 1]), (text, group, covered)
                neighbours = spans[max(0, i - 1):i] + spans[j:j + 1]
                assert any(n[1] > start and n[0] < end for n in neighbours), (text, group, covered)
        i = j
    covered_chars = set()
    for start, end in spans:
        covered_chars.update(range(start, end))
    for index, ch in enumerate(text):
        if index not in covered_chars:
            assert ours.sp_model.normalize("a" + ch + "b") in ("▁ab", "▁a▁b"), (text, index, ch)
