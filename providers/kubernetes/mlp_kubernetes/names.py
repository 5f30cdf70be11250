"""Names and labels of what mlp makes on a cluster.

Every object carries three labels, the only way mlp finds its objects again (refresh,
prune, destroy):

    app.kubernetes.io/managed-by: mlp
    mlp.dev/app:   the app's name
    mlp.dev/block: the block's address ("model.dnn"), or "app" for the app's own objects

A label value is at most 63 characters of [A-Za-z0-9_.-], starting and ending with a letter
or digit. An address that is not one already (`transformed_column.norm["x"]`, a long
name) becomes a readable slug plus 8 hex digits of its hash, so two addresses never share
a value. Object names are DNS labels (lower case, digits, '-'; at most 63) made the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "app.kubernetes.io/component"
APP = "mlp.dev/app"
BLOCK = "mlp.dev/block"
MLP = "mlp"
APP_BLOCK = "app"  # the block label of objects that belong to the whole app (its service accounts)

# annotations
DIGEST = "mlp.dev/digest"                  # what mlp asked for: a digest of the manifest it rendered
MODEL = "mlp.dev/model"                    # an api's model block
MODEL_FINGERPRINT = "mlp.dev/model-fingerprint"  # and the fingerprint of the model it serves
ADDRESS = "mlp.dev/address"                # the block's address, unabridged

LABEL_MAX = 63
_LABEL = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def _hash8(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def label_value(text: str) -> str:
    """`text` as a label value: itself when it is one, else a slug of it plus its hash."""
    if len(text) <= LABEL_MAX and _LABEL.match(text):
        return text
    slug = _NOT_LABEL.sub("-", text).strip("-_.")[: LABEL_MAX - 9].rstrip("-_.")
    return f"{slug}-{_hash8(text)}" if slug else _hash8(text)


def dns_name(*parts: str, limit: int = LABEL_MAX) -> str:
    """The parts joined as a DNS label ("iris", "train", "dnn" -> "iris-train-dnn"). `_` becomes
    `-` (block names never hold `-`, so that loses nothing); anything else lossy, or too long,
    gets the hash of the parts."""
    text = "-".join(parts)
    plain = text.lower().replace("_", "-")
    slug = _NOT_DNS.sub("-", plain).strip("-")
    if slug == plain and len(slug) <= limit and slug[:1].isalpha():
        return slug
    head = ("m-" + slug if not slug[:1].isalpha() else slug)[: limit - 9].rstrip("-")
    return f"{head}-{_hash8(text)}"


@dataclass(frozen=True)
class Owner:
    """Whose an object is: the app and the block (an address, or APP_BLOCK)."""

    app: str
    block: str = APP_BLOCK
    component: str = ""

    def labels(self) -> dict[str, str]:
        out = {MANAGED_BY: MLP, APP: label_value(self.app), BLOCK: label_value(self.block)}
        return {**out, COMPONENT: self.component} if self.component else out

    def selector(self) -> Selector:
        """The objects of exactly this block."""
        return Selector.of({MANAGED_BY: MLP, APP: label_value(self.app), BLOCK: label_value(self.block)})


@dataclass(frozen=True)
class Selector:
    """An equality label selector: every label given, with that value."""

    labels: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, labels: Mapping[str, str]) -> Selector:
        return cls(tuple(sorted(labels.items())))

    @classmethod
    def app(cls, app: str) -> Selector:
        """Everything mlp made for `app`."""
        return cls.of({MANAGED_BY: MLP, APP: label_value(app)})

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.labels)

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.labels)
