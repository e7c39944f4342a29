"""Request and response bodies in TEI's shapes (pydantic, strict: no silent type coercion).

Unknown fields are ignored, as TEI's serde structs do, so TEI clients that send newer fields work.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel

_STRICT = ConfigDict(strict=True, extra="ignore")
Direction = Literal["left", "right", "Left", "Right"]


class EmbedRequest(BaseModel):
    model_config = _STRICT
    inputs: Union[str, list[str]] = Field(examples=["What is Deep Learning?"])
    truncate: Optional[bool] = Field(None, description="truncate over-long inputs; default: the server's --auto-truncate")
    truncation_direction: Direction = "right"
    normalize: bool = Field(True, description="L2-normalise each embedding (TEI's default)")
    dimensions: Optional[int] = Field(None, ge=1, description="keep the first N dimensions (Matryoshka)")
    prompt_name: Optional[str] = Field(None, description="accepted for TEI compatibility; no prompts are configured")


class EmbedAllRequest(BaseModel):
    model_config = _STRICT
    inputs: Union[str, list[str]] = Field(examples=["What is Deep Learning?"])
    truncate: Optional[bool] = None
    truncation_direction: Direction = "right"
    prompt_name: Optional[str] = None


class OpenAIEmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request, as TEI's /v1/embeddings takes it (`model` and `user` are ignored)."""

    model_config = _STRICT
    input: Union[str, list[str]] = Field(examples=["What is Deep Learning?"])
    model: Optional[str] = None
    user: Optional[str] = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[int] = Field(None, ge=1)


class PredictRequest(BaseModel):
    model_config = _STRICT
    inputs: Union[str, list[str], list[list[str]]] = Field(
        description="a text, a pair [a, b], or a batch of [text] / [a, b] items", examples=["I like you."])
    truncate: Optional[bool] = None
    truncation_direction: Direction = "right"
    raw_scores: bool = Field(False, description="logits instead of softmax (sigmoid for one label)")


class RerankRequest(BaseModel):
    model_config = _STRICT
    query: str = Field(examples=["What is Deep Learning?"])
    texts: list[str] = Field(examples=[["Deep Learning is a branch of machine learning.", "Cheese is made of milk."]])
    truncate: Optional[bool] = None
    truncation_direction: Direction = "right"
    raw_scores: bool = Field(False, description="the logit instead of its sigmoid")
    return_text: bool = Field(False, description="echo each text in its rank")


class Rank(BaseModel):
    index: int
    score: float
    text: Optional[str] = None


class TokenizeRequest(BaseModel):
    model_config = _STRICT
    inputs: Union[str, list[str]] = Field(examples=["test"])
    add_special_tokens: bool = True
    prompt_name: Optional[str] = None


class ExtractRequest(BaseModel):
    """UIE-M information extraction: PaddleNLP Taskflow's schema (a label, a list of labels, or
    {label: [relation labels]} nested)."""

    model_config = _STRICT
    inputs: Union[str, list[str]] = Field(examples=["In 1997, Steve was excited to become the CEO of Apple."])
    schema_: Any = Field(alias="schema", examples=[[{"Person": ["Company"]}]])
    position_prob: float = Field(0.5, ge=0.0, lt=1.0, description="spans above this start/end probability")
    schema_lang: Literal["ch", "en"] = Field("ch", description="the language of the prompts Taskflow builds")


class TokenClassifyRequest(BaseModel):
    model_config = _STRICT
    inputs: Union[str, list[str]] = Field(examples=["Angela Merkel lives in Berlin."])
    aggregation_strategy: Literal["none", "simple", "first", "average", "max"] = "none"
    ignore_labels: Optional[list[str]] = Field(None, description="labels left out; default [\"O\"]")


class Prediction(BaseModel):
    score: float
    label: str


class SimpleToken(BaseModel):
    id: int
    text: str
    special: bool
    start: Optional[int]
    stop: Optional[int]


class ErrorResponse(BaseModel):
    error: str
    error_type: str


class OpenAIErrorResponse(BaseModel):
    message: str
    code: int
    type: str


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"]
    embedding: Union[list[float], str]
    index: int


class OpenAIUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingsResponse(BaseModel):
    object: Literal["list"]
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


EmbedResponse = RootModel[list[list[float]]]
EmbedAllResponse = RootModel[list[list[list[float]]]]
PredictResponse = RootModel[Union[list[Prediction], list[list[Prediction]]]]
TokenizeResponse = RootModel[list[list[SimpleToken]]]
RerankResponse = RootModel[list[Rank]]
