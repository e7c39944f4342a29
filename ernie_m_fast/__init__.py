"""ernie_m_fast: the ErnieM multilingual encoder on fused Triton, CUDA and CPU kernels.

A drop-in for transformers' ErnieM (config, tokenizer, base model and five task heads).
"""

from ._version import __version__
from . import ops
from .configuration import ErnieMConfig
from .modeling import (ErnieMFast, ErnieMForInformationExtraction, ErnieMForMultipleChoice,
                       ErnieMForQuestionAnswering, ErnieMForSequenceClassification, ErnieMForTokenClassification,
                       ErnieMModel)
from .pretrained import ErnieMPreTrainedModel
from .tokenization import ErnieMTokenizer


def pipeline(task: str, model=None, **kwargs):
    """A task pipeline in transformers' conventions; see `ernie_m_fast.pipelines.pipeline`."""
    from .pipelines import pipeline as build  # imported on first use: `import ernie_m_fast` stays as fast

    return build(task, model, **kwargs)


def build_info() -> dict:
    """How the compiled extension was built: version, cuda (bool), cuda_archs, openmp."""
    from . import _C

    return dict(_C.build_info())


__all__ = [
    "__version__",
    "ops",
    "build_info",
    "pipeline",
    "ErnieMConfig",
    "ErnieMFast",
    "ErnieMModel",
    "ErnieMPreTrainedModel",
    "ErnieMForSequenceClassification",
    "ErnieMForMultipleChoice",
    "ErnieMForTokenClassification",
    "ErnieMForQuestionAnswering",
    "ErnieMForInformationExtraction",
    "ErnieMTokenizer",
]
