"""The production engine: GLM-OCR served by SGLang (``client``), with the page image encoding
(``images``) and the token offset alignment (``tokens``) it needs."""

from app.engines.sglang.client import SGLangConfig, SGLangEngine
from app.engines.sglang.images import ImageFormat, encode_image
from app.engines.sglang.tokens import align_tokens

__all__ = ["ImageFormat", "SGLangConfig", "SGLangEngine", "align_tokens", "encode_image"]
