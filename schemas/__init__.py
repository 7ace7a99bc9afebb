"""Every wire format of Jalytics, defined once: Kafka message values and HTTP bodies."""

from schemas.alert import Alert
from schemas.api import (
    AlertOut,
    BatchIn,
    BatchItemResult,
    BatchResult,
    ErrorBody,
    FieldError,
    ReversalIn,
    ReversalOut,
    TransactionAccepted,
    TransactionIn,
    TransactionOut,
)
from schemas.baseline import Baseline, BaselineScope, ScopeKind, TailModel
from schemas.codec import MalformedJson, decode_json, encode_model
from schemas.transaction import Transaction
from schemas.verdict import Severity, Verdict

__all__ = [
    "Alert",
    "AlertOut",
    "Baseline",
    "BaselineScope",
    "BatchIn",
    "BatchItemResult",
    "BatchResult",
    "ErrorBody",
    "FieldError",
    "MalformedJson",
    "ReversalIn",
    "ReversalOut",
    "ScopeKind",
    "Severity",
    "TailModel",
    "Transaction",
    "TransactionAccepted",
    "TransactionIn",
    "TransactionOut",
    "Verdict",
    "decode_json",
    "encode_model",
]
