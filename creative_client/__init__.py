"""creative_client: an async-first client for AI media-generation job APIs.

>>> from creative_client import CreativeClient, GenerationRequest
>>> async with CreativeClient.from_env() as client:
...     job = await client.generate(prompt="a red fox")
"""

from importlib.metadata import PackageNotFoundError, version

from . import errors
from ._client import CreativeClient
from ._fallback import FallbackClient
from ._journal._model import JournalError
from ._journal._model import Row as JournalRow
from ._models import Asset, AssetKind, GenerationRequest, Job, JobStatus, Outcome, Progress
from ._retry import RetryPolicy
from ._sync import SyncCreativeClient
from ._telemetry import Telemetry
from ._webhooks import WebhookReceiver
from .errors import (
    AuthenticationError,
    ConfigurationError,
    CreativeError,
    InsufficientBalanceError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    NotSupportedError,
    ProviderResponseError,
    RateLimitError,
    ServerError,
    ShareUnavailableError,
    SubmissionUncertainError,
    TransportError,
)
from .providers import Provider, get_provider, register_provider

try:
    __version__ = version("creative-client")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "Asset",
    "AssetKind",
    "AuthenticationError",
    "ConfigurationError",
    "CreativeClient",
    "CreativeError",
    "FallbackClient",
    "GenerationRequest",
    "InsufficientBalanceError",
    "InvalidRequestError",
    "Job",
    "JobFailedError",
    "JobStatus",
    "JobTimeoutError",
    "JournalError",
    "JournalRow",
    "NotFoundError",
    "NotSupportedError",
    "Outcome",
    "Progress",
    "Provider",
    "ProviderResponseError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "ShareUnavailableError",
    "SubmissionUncertainError",
    "SyncCreativeClient",
    "Telemetry",
    "TransportError",
    "WebhookReceiver",
    "__version__",
    "errors",
    "get_provider",
    "register_provider",
]
