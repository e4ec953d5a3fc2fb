"""The only code that talks to exchanges. Framework-free: no Django import, no settings,
no environment variables; everything it needs comes in as arguments.

See ``connectors/README.md`` for the API, the caching rules and how to add an exchange or
an operation.
"""

from __future__ import annotations

from .base import Connector, StreamConnector
from .connection import ConnectionCheck, check_connection
from .credentials import Credentials
from .environments import Environment
from .errors import (
    BadSymbol,
    ConnectorError,
    CredentialsRejected,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidInput,
    InvalidOrder,
    NoOpenPosition,
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    TemporaryError,
)
from .exchanges import SUPPORTED_EXCHANGES, exchange_choices
from .factory import clear_connector_cache, close_stream_connectors, create_connector, create_stream_connector

__all__ = [
    "SUPPORTED_EXCHANGES",
    "BadSymbol",
    "ConnectionCheck",
    "Connector",
    "ConnectorError",
    "Credentials",
    "CredentialsRejected",
    "Environment",
    "ExchangeUnavailable",
    "InsufficientFunds",
    "InvalidInput",
    "InvalidOrder",
    "NoOpenPosition",
    "NotSupported",
    "OrderNotFound",
    "OutcomeUnknown",
    "PermissionDenied",
    "RateLimited",
    "StreamConnector",
    "TemporaryError",
    "check_connection",
    "clear_connector_cache",
    "close_stream_connectors",
    "create_connector",
    "create_stream_connector",
    "exchange_choices",
]
