"""Every wire format of Jalytics, defined once: Kafka message values and HTTP bodies."""

from schemas.alert import Alert
from schemas.api import (
    IDEMPOTENCY_KEY_PATTERN,
    UUID_PATTERN,
    AlertOut,
    BatchIn,
    BatchItemResult,
    BatchResult,
    ErrorBody,
    FieldError,
    OutcomeUnknown,
    ReversalIn,
    ReversalOut,
    TransactionAccepted,
    TransactionIn,
    TransactionOut,
    anchored,
)
from schemas.baseline import Baseline, BaselineScope, ScopeKind, TailModel
from schemas.codec import MalformedJson, decode_json, encode_model
from schemas.transaction import Transaction
from schemas.verdict import Severity, Verdict, VerdictReceipt

__all__ = [
    "IDEMPOTENCY_KEY_PATTERN",
    "UUID_PATTERN",
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
    "OutcomeUnknown",
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
    "VerdictReceipt",
    "anchored",
    "decode_json",
    "encode_model",
]
