"""What must not leave the machine in a published site: the runner's home directory and the values of
secret-looking environment variables (tokens, passwords, keys), whatever text they turn up in (an error
message, a path in a setting). Applied to every file the site is made of."""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH", re.IGNORECASE)
MIN_SECRET_LENGTH = 6  # shorter values ("1", "true") would redact ordinary words
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Redactor:
    secrets: tuple[str, ...]
    home: str | None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, home: Path | None = None) -> Redactor:
        environ = os.environ if environ is None else environ
        values = {v for k, v in environ.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH}
        forms = {form for v in values for form in (v, json.dumps(v)[1:-1], html.escape(v))}
        where = str(home if home is not None else Path.home()).rstrip("/")
        return cls(secrets=tuple(sorted(forms, key=len, reverse=True)), home=where if len(where) > 1 else None)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        if self.home:
            text = re.sub(re.escape(self.home) + r"(?=/|\\|\s|[\"'<&:;,)]|$)", "~", text)
        return text
