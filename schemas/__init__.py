"""Every wire format of Jalytics, defined once: Kafka message values and HTTP bodies."""

from schemas.alert import Alert
from schemas.api import AlertOut, ErrorBody, FieldError, TransactionAccepted, TransactionIn
from schemas.baseline import Baseline, BaselineScope, ScopeKind
from schemas.codec import MalformedJson, decode_json, encode_model
from schemas.transaction import Transaction
from schemas.verdict import Severity, Verdict

__all__ = [
    "Alert",
    "AlertOut",
    "Baseline",
    "BaselineScope",
    "ErrorBody",
    "FieldError",
    "MalformedJson",
    "ScopeKind",
    "Severity",
    "Transaction",
    "TransactionAccepted",
    "TransactionIn",
    "Verdict",
    "decode_json",
    "encode_model",
]
