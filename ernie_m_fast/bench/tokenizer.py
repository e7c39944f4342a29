"""Tokenizer benchmark: ours against transformers' ErnieMTokenizer on the same batch, in one run.

    python -m ernie_m_fast.bench.tokenizer [--n-sentences 2000] [--tokenizer-dir DIR] [--repeats 5]

Without --tokenizer-dir a small sentencepiece BPE model is trained on the bundled multilingual corpus
(no download). Sentences are two random corpus lines joined (seeded), so the batch mixes scripts.
Each scenario is warmed up once, then timed in `repeats` interleaved rounds (the shared timer,
bench/timing.py), and the best time of each is kept (the least disturbed by other work on the machine). Outputs are compared: a speed-up on
different output would mean nothing. transformers is needed here (pip install transformers==4.57.6).
"""

from __future__ import annotations

import argparse
import random
import tempfile

from .report import add_output_arguments, emit
from .timing import measure

SCENARIOS = {
    "ids": {},
    "padded_pt": dict(padding=True, truncation=True, max_length=128, return_tensors="pt"),
    # transformers cannot return offsets: its baseline here is the same call without them
    "offsets": dict(padding=True, return_offsets_mapping=True),
}


def make_sentences(n_sentences: int, seed: int = 0) -> list[str]:
    from ..tiny import bundled_corpus_lines

    lines = bundled_corpus_lines()
    rng = random.Random(seed)
    return [f"{rng.choice(lines)} {rng.choice(lines)}" for _ in range(n_sentences)]


def _same_output(a, b) -> bool:
    """b holds everything a holds, equal (b may add offset_mapping, which a cannot have)."""
    if set(a.keys()) != set(b.keys()) - {"offset_mapping"}:
        return False
    for key in a:
        x, y = a[key], b[key]
        if hasattr(x, "tolist"):
            x, y = x.tolist(), y.tolist()
        if x != y:
            return False
    return True


def run(n_sentences: int = 2000, tokenizer_dir: str | None = None, repeats: int = 5, vocab_size: int = 4000,
        verbose: bool = True) -> dict:
    """Time both tokenizers on one batch of `n_sentences`; returns per-scenario times and speed ratios."""
    try:
        import transformers
    except ImportError as exc:
        raise ImportError("the tokenizer benchmark compares against transformers: pip install transformers==4.57.6") from exc
    transformers.logging.set_verbosity_error()
    from ..tiny import train_tiny_tokenizer
    from ..tokenization import ErnieMTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        if tokenizer_dir is None:
            tokenizer_dir = train_tiny_tokenizer(tmp, vocab_size=vocab_size)
        theirs = transformers.ErnieMTokenizer.from_pretrained(tokenizer_dir)
        ours = ErnieMTokenizer.from_pretrained(tokenizer_dir)
    sentences = make_sentences(n_sentences)
    result = {"n_sentences": n_sentences, "vocab_size": ours.vocab_size, "repeats": repeats, "scenarios": {}}
    for name, kwargs in SCENARIOS.items():
        their_kwargs = dict(kwargs, return_attention_mask=True)  # ours returns the mask by default
        their_kwargs.pop("return_offsets_mapping", None)
        expected = theirs(sentences, **their_kwargs)
        got = ours(sentences, **kwargs)  # also the warm-up: fills the per-piece cache
        identical = _same_output(expected, got)
        timings = measure({"transformers": lambda: theirs(sentences, **their_kwargs),
                           "ours": lambda: ours(sentences, **kwargs)}, rounds=repeats, warmup=0, desc=name)
        t_theirs, t_ours = timings["transformers"].min, timings["ours"].min
        n_tokens = sum(len(r) for r in expected["input_ids"]) if name == "ids" else None
        result["scenarios"][name] = {
            "kwargs": {k: v for k, v in kwargs.items()},
            "identical_output": identical,
            "transformers_s": t_theirs,
            "ernie_m_fast_s": t_ours,
            "speedup": t_theirs / t_ours,
            "sentences_per_s": n_sentences / t_ours,
            **({"tokens": n_tokens} if n_tokens is not None else {}),
        }
        if verbose:
            print(f"{name:>10}: transformers {t_theirs * 1e3:8.1f} ms | ernie_m_fast {t_ours * 1e3:7.1f} ms | "
                  f"speed-up {t_theirs / t_ours:5.1f}x | identical output: {identical}")
    # the headline: same work on both sides (the offsets scenario does more work than its baseline)
    result["speedup"] = min(result["scenarios"][name]["speedup"] for name in ("ids", "padded_pt"))
    if verbose:
        print(f"speed-up (same outputs, same work): {result['speedup']:.1f}x on {n_sentences} sentences")
    return result


def add_arguments(parser) -> None:
    parser.add_argument("--n-sentences", type=int, default=2000)
    parser.add_argument("--tokenizer-dir", default=None, help="a directory with sentencepiece.bpe.model + vocab.txt")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--vocab-size", type=int, default=4000, help="for the model trained when no dir is given")
    add_output_arguments(parser)


def main_from_args(args) -> int:
    result = run(args.n_sentences, args.tokenizer_dir, args.repeats, args.vocab_size, verbose=not args.json)
    if args.json:
        emit(result, "", args)
    if args.plot:
        from .report import bar_chart

        names = list(result["scenarios"])
        bar_chart(args.plot, names, {"speed-up over transformers": [result["scenarios"][n]["speedup"] for n in names]},
                  "speed-up (x)", f"tokenizer, {args.n_sentences} sentences")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ernie-m-fast bench tokenizer", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return main_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    main()
