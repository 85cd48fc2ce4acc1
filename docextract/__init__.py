"""The docextract Python client (``docextract.client``): the API from an ERP or a script."""

from docextract.client import (
    ApiError,
    AsyncClient,
    BatchView,
    Client,
    ExtractionResult,
    InvalidSignature,
    JobView,
    Retry,
    verify_webhook,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "BatchView",
    "Client",
    "ExtractionResult",
    "InvalidSignature",
    "JobView",
    "Retry",
    "verify_webhook",
]
