"""Labels and annotations that are not mlp's own: a setting's map of strings, checked.

    pod_labels                    on the pod template of every Job and Deployment mlp makes
    service_account_annotations   on the `<app>-workload` ServiceAccount (a workload identity)

A key is Kubernetes' qualified name: an optional prefix, a DNS subdomain of at most 253
characters, and "/", then a name of at most 63 letters, digits, '-', '_' and '.', starting
and ending with a letter or digit. A label's value is at most 63 of those characters (or
empty); an annotation's is any string.

Keys mlp puts on its own objects, or that Kubernetes' controllers set on pods, are refused
rather than overridden: mlp finds its objects by its labels, and a Job's or Deployment's
controller would overwrite its own without a word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlp_kubernetes.names import COMPONENT, MANAGED_BY

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
MLP_PREFIX = "mlp.dev/"
# set on pods by mlp (its labels), by the Job controller, and by the Deployment controller
RESERVED_LABELS = (MANAGED_BY, COMPONENT, "job-name", "controller-uid", "pod-template-hash")
RESERVED_LABEL_PREFIXES = (MLP_PREFIX, "batch.kubernetes.io/")


class MetaKind(StrEnum):
    LABEL = "label"
    ANNOTATION = "annotation"


@dataclass(frozen=True)
class Problem:
    """What is wrong with one entry of a setting, said the way a diagnostic says it."""

    summary: str
    detail: str
    fix: str


def key_ok(key: str) -> bool:
    """Whether `key` is a qualified name: [PREFIX/]NAME."""
    prefix, slash, name = key.rpartition("/")
    if slash and not (prefix and len(prefix) <= 253 and _SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_NAME.match(name))


def problems(setting: str, value: Any, kind: MetaKind) -> list[Problem]:
    """Everything wrong with the setting's value; none when it is a map of good keys to strings."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [Problem(f"{setting} is a map of strings, not a {type(value).__name__}", "",
                        f'Write it as {setting} = {{ "KEY" = "VALUE" }}')]
    return [p for k, v in sorted(value.items(), key=lambda kv: str(kv[0])) if (p := _entry(setting, k, v, kind))]


def string_map(setting: str, value: Any, kind: MetaKind) -> dict[str, str]:
    """The setting as a map of strings, sorted by key; ValueError with the first problem."""
    found = problems(setting, value, kind)
    if found:
        raise ValueError(found[0].summary)
    return {str(k): str(v) for k, v in sorted((value or {}).items())}


def _entry(setting: str, key: Any, value: Any, kind: MetaKind) -> Problem | None:
    if not isinstance(key, str) or not key_ok(key):
        return Problem(f'{setting}: "{key}" is not a Kubernetes {kind.value} key',
                       "A key is an optional DNS subdomain and '/', then a name of at most 63 letters, digits, "
                       "'-', '_' and '.', starting and ending with a letter or digit.",
                       'Use a key like "example.com/team"')
    if _reserved(key, kind):
        return Problem(f'{setting}: "{key}" is a key mlp or Kubernetes sets itself',
                       f"mlp finds its objects by its own {kind.value}s ({MANAGED_BY}, {MLP_PREFIX}...), and the "
                       "Job and Deployment controllers set theirs on every pod; none of them can be given here.",
                       "Use a key of your own domain, e.g. \"example.com/team\"")
    if not isinstance(value, str):
        return Problem(f'{setting}: the value of "{key}" is a {type(value).__name__}, not a string',
                       f"Kubernetes {kind.value} values are strings.", f'Quote it: "{key}" = "{_hcl(value)}"')
    if kind is MetaKind.LABEL and not (len(value) <= 63 and _LABEL_VALUE.match(value)):
        return Problem(f'{setting}: "{value}" (of "{key}") is not a Kubernetes label value',
                       "A label value is at most 63 letters, digits, '-', '_' and '.', starting and ending with a "
                       "letter or digit, or empty.", "Shorten it, or put it in an annotation")
    return None


def _reserved(key: str, kind: MetaKind) -> bool:
    if kind is MetaKind.ANNOTATION:
        return key.startswith(MLP_PREFIX)
    return key in RESERVED_LABELS or key.startswith(RESERVED_LABEL_PREFIXES)


def _hcl(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
