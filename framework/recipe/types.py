"""Constrained types shared by every section, checked when a recipe is validated.

Limits are those of the systems the names end up in, so a recipe that validates
never fails at deploy time on a name or a quantity.
"""


import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from framework.recipe.base import Section

# A recipe name prefixes every generated object: K8s Services need DNS-1035 labels
# (a leading letter, <= 63 chars) and KubeRay derives `<rayservice>-raycluster-xxxxx-
# head-svc` (+26 chars) from `<recipe>-serve`, so 30 leaves room for every suffix.
RECIPE_NAME_MAX = 30
LABEL_MAX = 63
SUBDOMAIN_MAX = 253

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(rf"^{_LABEL}$")
_DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def _name_checker(pattern: re.Pattern[str], max_len: int, what: str):
    def check(value: str) -> str:
        if not value:
            raise PydanticCustomError("name", f"must not be empty ({what})")
        if len(value) > max_len:
            raise PydanticCustomError(
                "name", f"'{value[:20]}...' is {len(value)} characters; at most {max_len} ({what})"
            )
        if not pattern.match(value):
            raise PydanticCustomError(
                "name",
                f"'{value}' is not a valid name: use lowercase letters, digits and '-', "
                f"starting and ending with a letter or digit ({what})",
            )
        return value

    return check


def _name(pattern: re.Pattern[str], max_len: int, what: str, starts_with_letter=False):
    return Annotated[
        str,
        AfterValidator(_name_checker(pattern, max_len, what)),
        WithJsonSchema(
            {"type": "string", "minLength": 1, "maxLength": max_len, "pattern": pattern.pattern}
        ),
    ]


RecipeName = _name(_DNS1035_RE, RECIPE_NAME_MAX, f"DNS-1035 label, at most {RECIPE_NAME_MAX} characters")
Name = _name(_LABEL_RE, LABEL_MAX, "DNS-1123 label")
SubdomainName = _name(_SUBDOMAIN_RE, SUBDOMAIN_MAX, "DNS-1123 subdomain")

# --- Kubernetes resource quantity ---------------------------------------------------
_QUANTITY_RE = re.compile(
    r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)


def _quantity(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PydanticCustomError("quantity", "must be a Kubernetes quantity such as 2, 500m or 4Gi")
    text = str(value).strip() if isinstance(value, str) else repr(value)
    if not _QUANTITY_RE.match(text):
        raise PydanticCustomError(
            "quantity",
            f"'{value}' is not a Kubernetes quantity: write a number with an optional "
            "suffix, such as 2, 500m, 512Mi or 4Gi",
        )
    return text


Quantity = Annotated[
    str,
    BeforeValidator(_quantity),
    WithJsonSchema(
        {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _QUANTITY_RE.pattern}]}
    ),
]

_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": 1e-9, "u": 1e-6}


def quantity_value(quantity: str) -> float:
    """The number a quantity stands for (`500m` -> 0.5, `1Gi` -> 1073741824)."""
    match = re.match(r"^([0-9.]+)(.*)$", quantity)
    assert match, quantity
    number, suffix = match.groups()
    if suffix[:1] in ("e", "E"):
        return float(quantity)
    return float(number) * _SUFFIX[suffix]


# --- container image reference ------------------------------------------------------
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_IMAGE_RE = re.compile(
    rf"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]+)?)/)?(?P<repo>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)


def _image(value: str) -> str:
    match = _IMAGE_RE.match(value)
    if not match:
        raise PydanticCustomError("image", f"'{value}' is not a container image reference")
    if not match["tag"] and not match["digest"]:
        raise PydanticCustomError(
            "image", f"'{value}' has no tag: pin a version or digest (e.g. {value}:1.0.0)"
        )
    if match["tag"] == "latest" and not match["digest"]:
        raise PydanticCustomError(
            "image", f"'{value}' uses ':latest', which is not reproducible: pin a version or digest"
        )
    return value


ImageRef = Annotated[
    str,
    AfterValidator(_image),
    WithJsonSchema({"type": "string", "pattern": _IMAGE_RE.pattern}),
]


def image_repository(image: str) -> str:
    """'ghcr.io/org/runtime:0.1.0' -> 'ghcr.io/org/runtime': the image without tag or digest
    (what a CI build tags with the commit, and what a deploy re-tags)."""
    name = image.split("@", 1)[0]
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}"

# --- cron schedule (Kubernetes CronJob / GitHub Actions syntax) --------------------
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _cron(value: str) -> str:
    text = value.strip()
    if text in _CRON_MACROS:
        return text
    fields = text.split()
    if len(fields) != 5:
        raise PydanticCustomError(
            "cron",
            f"'{value}' is not a cron schedule: use 5 fields (minute hour day month weekday), "
            f"e.g. '0 * * * *', or one of {', '.join(_CRON_MACROS)}",
        )
    from croniter import croniter  # only when a schedule is present

    if not croniter.is_valid(text):
        raise PydanticCustomError("cron", f"'{value}' is not a valid cron schedule")
    return text


Cron = Annotated[
    str,
    AfterValidator(_cron),
    WithJsonSchema({"type": "string", "minLength": 1}),
]

# --- duration (Go / Prometheus style: 90s, 5m, 1h30m, 7d) ------------------------------
_DURATION_RE = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w))+$")
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(value: str) -> str:
    if not _DURATION_RE.match(value) or duration_seconds(value) <= 0:
        raise PydanticCustomError(
            "duration", f"'{value}' is not a duration: use e.g. 30s, 5m, 1h30m or 7d"
        )
    return value


def duration_seconds(value: str) -> float:
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))


Duration = Annotated[
    str,
    AfterValidator(_duration),
    WithJsonSchema({"type": "string", "pattern": _DURATION_RE.pattern}),
]

# --- small numeric and text types ----------------------------------------------------
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Percent = Annotated[float, Field(ge=0.0, le=100.0)]
PositiveInt = Annotated[int, Field(gt=0)]
EnvVarName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


# --- secrets: references only -----------------------------------------------------
class SecretRef(Section):
    """A key of a Kubernetes Secret. Recipes live in git: they never hold the value."""

    name: SubdomainName = Field(description="Name of the Kubernetes Secret.")
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = Field(
        description="Key inside the Secret whose value is used."
    )

    @model_validator(mode="before")
    @classmethod
    def _never_a_value(cls, data: Any) -> Any:
        if isinstance(data, dict) and "value" in data:
            raise PydanticCustomError(
                "secret_value",
                "a secret must not carry its value in a recipe: keep only {name, key} "
                "of a Kubernetes Secret",
            )
        if not isinstance(data, dict):
            raise PydanticCustomError(
                "secret_value",
                "a secret is a reference {name, key} to a Kubernetes Secret, never a literal "
                "value: create the Secret (kubectl create secret generic ...) and reference it",
            )
        return data
